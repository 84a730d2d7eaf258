"""Loggers for a run: Lightning's CSVLogger writes metrics.csv into the run folder; W&B is optional."""
import warnings

from pytorch_lightning.loggers import CSVLogger


def build_loggers(cfg, run_dir):
    if cfg["logger"] == "none":
        return []
    loggers = [CSVLogger(run_dir, name="", version="")]  # -> run_dir/metrics.csv
    if cfg["logger"] == "wandb":
        try:
            from pytorch_lightning.loggers import WandbLogger

            loggers.append(WandbLogger(project=cfg.get("wandb_project") or "cifar10-lab", save_dir=run_dir,
                                       name=cfg.get("run_name"), offline=True))
        except Exception as e:  # W&B must never be the reason a run dies
            warnings.warn(f"W&B logging is off ({type(e).__name__}: {e}); metrics.csv still gets everything")
    return loggers
