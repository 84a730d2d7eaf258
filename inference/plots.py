"""The three figures evaluate.py writes, each a PNG file: confusion matrices, reliability diagram, worst mistakes.

    confusion(counts, classes, path)                       counts (C, C), rows = true class
    calibration(confidences, correct, n_bins, ece, path)   top-1 probability and hit (N,) of every image
    mistakes(images, true, pred, confidence, classes, path) uint8 (K, 3, 32, 32), most confident first
"""
import matplotlib

matplotlib.use("Agg")  # files only: no display needed, none opened
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional.classification.calibration_error import _binning_bucketize  # noqa: E402
from torchmetrics.utilities.plot import plot_confusion_matrix  # noqa: E402

DPI = 120
MISTAKE_COLUMNS = 8


def _save(fig, path):
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def confusion(counts, classes, path):
    """Left: counts. Right: each row divided by its sum (the share of a true class given each label;
    the diagonal is the per-class accuracy). torchmetrics draws both."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(17, 7.5))
    rows = counts.sum(1, keepdim=True).clamp_min(1)  # a class without test images: a row of zeros, no NaN
    plot_confusion_matrix(counts, ax=left, labels=list(classes))
    plot_confusion_matrix((counts / rows).round(decimals=2), ax=right, labels=list(classes))
    left.set_title("test images: counts (row = true class)")
    right.set_title("row-normalised (diagonal = per-class accuracy)")
    _save(fig, path)


def calibration(confidences, correct, n_bins, ece, path):
    """Reliability diagram: per confidence bin, the accuracy (bars) against the mean confidence (the gap
    drawn in red; above the bar = overconfident); below, how many images fall in each bin. The bins are
    torchmetrics' own (the ones its ECE is computed from); its extra bin for a confidence of exactly 1.0
    is merged into the last."""
    edges = torch.linspace(0, 1, n_bins + 1)
    acc, conf, prop = (t.double() for t in _binning_bucketize(confidences.double(), correct, edges.double()))
    # Merge bin n_bins (confidence == 1.0) into bin n_bins - 1, weighting by the images in each.
    tail = prop[n_bins - 1:].sum()
    if tail > 0:
        acc[n_bins - 1] = (acc[n_bins - 1:] * prop[n_bins - 1:]).sum() / tail
        conf[n_bins - 1] = (conf[n_bins - 1:] * prop[n_bins - 1:]).sum() / tail
    acc, conf, prop = acc[:n_bins], conf[:n_bins], torch.cat([prop[:n_bins - 1], tail.view(1)])
    centres, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    used = prop > 0

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7.5), height_ratios=(3, 1), sharex=True)
    top.bar(centres[used], acc[used], width, color="tab:blue", edgecolor="black", label="accuracy")
    top.bar(centres[used], (conf - acc)[used], width, bottom=acc[used], facecolor="none",
            edgecolor="tab:red", hatch="//", label="gap to mean confidence")
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set(ylim=(0, 1), ylabel="accuracy in bin",
            title=f"reliability diagram, {n_bins} bins: ECE {ece:.4f}, mean confidence "
                  f"{confidences.mean():.3f}, accuracy {correct.float().mean():.3f}")
    top.title.set_fontsize(9)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, prop * len(confidences), width, color="gray", edgecolor="black")
    bottom.set(xlim=(0, 1), xlabel="confidence (top-1 softmax probability)", ylabel="images")
    _save(fig, path)


def mistakes(images, true, pred, confidence, classes, path):
    """A grid of wrong predictions, most confident first: each titled true -> predicted (probability)."""
    n = len(images)
    cols = min(MISTAKE_COLUMNS, max(n, 1))
    rows = max((n + cols - 1) // cols, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(f"{classes[true[i]]}\n-> {classes[pred[i]]} {confidence[i]:.2f}", fontsize=8)
    fig.suptitle(f"the {n} most confident mistakes (true -> predicted, probability)" if n else "no mistakes",
                 fontsize=10)
    _save(fig, path)
