"""Re-test a finished run on the CIFAR-10 test set and look at what it gets wrong.

    python evaluate.py runs/X [--checkpoint best|last|PATH] [--raw-weights] [--tta 0|1|2] [--data-dir DIR]
                              [--accelerator auto] [--overwrite]

Writes RUN_DIR/eval/ and nothing else in the folder (results.json, metrics.csv and the checkpoints stay
as they are); an earlier evaluation there is kept, and the command refused, unless --overwrite:

    metrics.json     accuracy, cross-entropy, top-2 accuracy, expected calibration error (15 bins), per
                     class accuracy, precision, recall, F1 and image count, the confusion counts, and the
                     checkpoint, weights (ema or raw), test-time augmentation and data they were measured
                     with (strict JSON)
    confusion.png    confusion matrix: counts, and row-normalised
    calibration.png  reliability diagram: accuracy per confidence bin against its mean confidence
    mistakes.png     the most confident wrong predictions, with true and predicted class

and prints one line: accuracy, loss, top-2, ECE, where the files are. The test runs through Lightning's
trainer.test on the run's own test loader, precision and eval batch size, with the same checkpoint
train.py tested (--checkpoint best) and the config's tta: so the accuracy equals results.json's
test_acc on the same kind of machine. A run with W&B on (config logger: wandb) and a wandb_id file
also gets the numbers and figures in its W&B run, resumed by that id, under eval/.
"""
import datetime
import importlib.util
import os
import sys
import warnings

from config.checks import FOLDER, NEW_FILE, RUN_FOLDER, Parser, checkpoint_arg, command_name, require
from config.signatures import models
from datamodules.files import CLASSES
from inference import add_weights_flag
from runfolder import BadInput, RunFolder, one_line_errors, strict_json
from runfolder.folder import CALIBRATION, CONFUSION, EVAL_METRICS, MISTAKES, WANDB_ID
from training import console

# torch, Lightning and torchmetrics are imported in the functions that use them, after the flags are read:
# --help and a bad flag answer at once (tests/test_startup.py).

ECE_BINS = 15      # equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)
N_MISTAKES = 32    # images in mistakes.png


def build_parser(prog="evaluate.py"):
    p = Parser(prog=prog, description="Re-test a finished run on the CIFAR-10 test set; write RUN_DIR/eval/.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train.py")
    p.add_argument("--checkpoint", default="best", help="best (default; what results.json's test_acc used), last, or a .ckpt path")
    add_weights_flag(p)
    p.add_argument("--tta", type=int, choices=[0, 1, 2], help="resnet: test-time augmentation (default: the run's own)")
    p.add_argument("--data-dir", metavar="DIR", help="CIFAR-10 location (default: the run's own data_dir)")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (default)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation in RUN_DIR/eval/ (default: keep it, refuse)")
    return p


def collector():
    """A callback keeping the test loop's logits (a forward hook on the model, so whatever its forward does,
    TTA included) and labels, batch by batch in the loader's order."""
    import pytorch_lightning as pl

    class Collect(pl.Callback):
        def on_test_start(self, trainer, pl_module):
            self.logits, self.labels = [], []
            self.hook = pl_module.register_forward_hook(lambda m, args, out: self.logits.append(out.detach().float().cpu()))

        def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            self.labels.append(batch[1].cpu())

        def on_test_end(self, trainer, pl_module):
            self.hook.remove()

    return Collect()


def run_test(model, cfg, data, accelerator):
    """Lightning's test loop as train.py runs it: (test/acc, test/loss, logits (N, C), labels (N,))."""
    import pytorch_lightning as pl
    import torch

    collect = collector()
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=cfg.get("precision", "32-true"), logger=False,
                         callbacks=[collect], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=data.hparams.data_dir)
    result = trainer.test(model, datamodule=data, verbose=False)[0]
    logits, labels = torch.cat(collect.logits), torch.cat(collect.labels)
    assert len(logits) == len(labels), "one forward per test batch"
    return result["test/acc"], result["test/loss"], logits, labels


def metrics(logits, labels):
    """Everything torchmetrics says about the predictions; per-class values as lists in CLASSES order."""
    import torch
    from torchmetrics.classification import (MulticlassAccuracy, MulticlassCalibrationError, MulticlassConfusionMatrix,
                                             MulticlassF1Score, MulticlassPrecision, MulticlassRecall)

    c = len(CLASSES)
    probs = logits.softmax(1)
    ece = MulticlassCalibrationError(c, n_bins=ECE_BINS, norm="l1")
    out = dict(
        top2_accuracy=MulticlassAccuracy(c, top_k=2, average="micro")(probs, labels).item(),
        ece=ece(probs, labels).item(),
        per_class_accuracy=MulticlassAccuracy(c, average=None)(probs, labels).tolist(),  # = recall per class
        precision=MulticlassPrecision(c, average=None)(probs, labels).tolist(),
        recall=MulticlassRecall(c, average=None)(probs, labels).tolist(),
        f1=MulticlassF1Score(c, average=None)(probs, labels).tolist(),
        confusion=MulticlassConfusionMatrix(c)(probs, labels),
    )
    out["confidences"], out["correct"] = torch.cat(ece.confidences), torch.cat(ece.accuracies)
    return out


def log_to_wandb(folder, cfg, numbers, figures):
    """The numbers and figures into the run's own W&B run (resumed by its id), under eval/; a warning, never
    an error, when W&B fails. Returns a line saying where they went, or None when W&B is off for the run."""
    if cfg.get("logger") != "wandb" or importlib.util.find_spec("wandb") is None or not os.path.isfile(folder.file(WANDB_ID)):
        return None
    import wandb

    from training.loggers import run_id, wandb_mode

    try:
        run = wandb.init(id=run_id(folder), resume="allow", project=cfg.get("wandb_project") or "cifar10-lab",
                         entity=cfg.get("wandb_entity"), dir=folder.path, mode=wandb_mode(),
                         settings=wandb.Settings(silent=True))  # our own line says where it went
        values = {f"eval/{k}": v for k, v in numbers.items()}
        run.log({**values, **{f"eval/{name}": wandb.Image(path) for name, path in figures.items()}})
        run.summary.update(values)
        offline, where = run.offline, run.settings.sync_dir
        run.finish()
    except Exception as e:  # W&B is a copy of what eval/ holds; its failure must not fail the evaluation
        warnings.warn(f"W&B: the evaluation was not logged ({type(e).__name__}: {e}); eval/ has everything")
        return None
    return f"W&B run {run.id}: eval/ logged" + (f" offline to {where}; upload it with: wandb sync {where}" if offline else "")


def flat_numbers(report):
    """metrics.json's numbers as flat W&B keys: acc, loss, ..., precision/cat, ..."""
    flat = {k: report[k] for k in ("accuracy", "cross_entropy", "top2_accuracy", "ece")}
    for name, row in report["per_class"].items():
        flat.update({f"{k}/{name}": v for k, v in row.items() if k != "images"})
    return flat


@one_line_errors
def main(argv=None):
    args = build_parser(command_name("evaluate.py", argv)).parse_args(argv)
    folder = RunFolder(args.run_dir)
    require(("RUN_DIR", args.run_dir, RUN_FOLDER), checkpoint_arg(args.checkpoint), ("--data-dir", args.data_dir, FOLDER),
            ("output", os.path.join(folder.eval_dir, EVAL_METRICS), NEW_FILE, args.overwrite))
    console.quiet()
    import torch

    from inference import load_run, plots
    from inference.data import test_data

    model, cfg = load_run(args.run_dir, args.checkpoint, raw_weights=args.raw_weights)
    if args.tta is not None:
        if "tta" not in models()[cfg["model"]].settings:
            raise BadInput(f"--tta: {cfg['model']} has no test-time augmentation")
        model.hparams.tta = args.tta
    data = test_data(cfg, args.data_dir)
    acc, loss, logits, labels = run_test(model, cfg, data, args.accelerator)
    m = metrics(logits, labels)
    counts = m["confusion"]
    report = dict(
        accuracy=acc, cross_entropy=loss, top2_accuracy=m["top2_accuracy"], ece=m["ece"], ece_bins=ECE_BINS,
        per_class={name: dict(accuracy=m["per_class_accuracy"][i], precision=m["precision"][i],
                              recall=m["recall"][i], f1=m["f1"][i], images=int(counts[i].sum()))
                   for i, name in enumerate(CLASSES)},
        confusion=counts.tolist(),
        model=cfg["model"], checkpoint=model.checkpoint_path, checkpoint_choice=args.checkpoint, weights=model.weights,
        tta=getattr(model.hparams, "tta", None),
        data=dict(data_dir=data.hparams.data_dir, split="test", images=len(labels)),
        precision=cfg.get("precision", "32-true"), evaluated_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    os.makedirs(folder.eval_dir, exist_ok=True)
    with open(os.path.join(folder.eval_dir, EVAL_METRICS), "w") as f:
        f.write(strict_json(report) + "\n")

    figures = {name: os.path.join(folder.eval_dir, file) for name, file in
               (("confusion", CONFUSION), ("calibration", CALIBRATION), ("mistakes", MISTAKES))}
    plots.confusion(counts, CLASSES, figures["confusion"])
    plots.calibration(m["confidences"], m["correct"], ECE_BINS, m["ece"], figures["calibration"])
    preds = logits.argmax(1)
    confidence = logits.softmax(1).max(1).values
    wrong = (preds != labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)][:N_MISTAKES]
    raw = data.x[data.splits["test"]]  # uint8, in the test loader's order
    assert torch.equal(data.y[data.splits["test"]], labels), "the test loader keeps the split's order"
    plots.mistakes(raw[worst], labels[worst].tolist(), preds[worst].tolist(), confidence[worst].tolist(),
                        CLASSES, figures["mistakes"])

    wandb_line = log_to_wandb(folder, cfg, flat_numbers(report), figures)
    if wandb_line:
        print(wandb_line, file=sys.stderr)
    print(f"accuracy {acc:.4f}  loss {loss:.4f}  top-2 {m['top2_accuracy']:.4f}  ECE {m['ece']:.4f}  "
          f"on {len(labels)} test images, {os.path.relpath(model.checkpoint_path, folder.path)} ({model.weights} weights)"
          f"  -> {folder.eval_dir}")
    return report



def cli():
    """The installed command, cifar10-lab-evaluate: main's return value is for Python callers, not an exit status."""
    main()


if __name__ == "__main__":
    main()
