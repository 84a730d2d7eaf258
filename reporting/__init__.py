"""What report.py computes from finished run folders, beside its tables and plots. Stdlib only (plots import
matplotlib when drawn); stands on runfolder, so training/seeds.py can summarise a seed group with it too.

    stats.py       mean ± std with a t-based 95% interval; Welch's t-test and Hedges' g (no scipy)
    compare.py     report.py --compare A B: is B's test accuracy different from A's beyond seed noise?
    provenance.py  in what the runs' provenance.json differ
"""
