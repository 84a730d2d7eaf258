"""In what the runs' provenance.json differ (training/provenance.py writes them): report.py shows it beside a
table or a comparison, since a difference in numbers may come from there.

    differences(records)    -> {item: [value per record]} for the COMPARED items that are not all equal
"""

# What report.py compares across runs: a difference in any of these is shown beside a comparison (not the
# host: its name alone changes no number).
COMPARED = ("git_commit", "git_dirty", "diff_sha256", "python", "torch", "lightning", "torchmetrics", "cuda", "cudnn",
            "device", "data_sha256")


def differences(records):
    """{item: [its value in each record]} for the COMPARED items whose values are not all the same;
    runs without a record (None: made before provenance.json existed) are left out of the comparison."""
    out = {}
    for key in COMPARED:
        values = [r.get(key) if r else None for r in records]
        present = [v for v, r in zip(values, records) if r]
        if any(v != present[0] for v in present):
            out[key] = values
    return out
