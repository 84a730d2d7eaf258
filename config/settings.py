"""The settings that are no class's: what to train, how long, and where and how it runs.

The models' and the data module's settings are their __init__ signatures (config/signatures.py);
these are the rest, with their defaults and, through Runtime[...] and Length[...], whether a
continuing run may change them, through Loop[...] that report.py pools over them (config/types.py).
"""
import importlib.util
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from .types import AUTO, Auto, Length, Loop, Positive, PositiveInt, Range, Runtime

PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true", "64")
PROFILERS = ("simple", "advanced", "pytorch")  # Lightning's profilers, by its names for them
EARLY_STOP_ON = {"val/acc": "max", "val/loss": "min"}  # what early stopping may watch, and which way is better
# What a run folder whose config.yaml predates a setting ran at, where that is not the setting's default now
SAVED_WITHOUT = {"steps_per_call": 1}


@dataclass
class Run:
    """Settings of the run itself.

    model: which model (python train.py --model NAME --help lists its settings)
    preset: a config from configs/, under --config files and flags
    max_steps: optimizer steps
    grad_clip: clip the gradient norm to this; off by default, as the course trains
    accumulate N: optimizer step every N batches
    steps_per_call K: optimizer steps per Lightning step: the same training as 1, Lightning's per-step cost paid once per K steps; auto: the largest K <= 10 dividing --max-steps, --log-every and --eval-every, 1 where K > 1 cannot run (docs/tools.md)
    ema DECAY: keep an exponential moving average of the weights (e.g. 0.999); validation, test and evaluate/predict/export use it
    early_stop N: stop when --early-stop-on has not improved for N evaluations in a row
    early_stop_on: the validation metric early stopping watches
    precision: 32-true, bf16-mixed, 16-mixed, ...
    checkpoint: auto: best by val/acc (each epoch without validation) + last.ckpt; end: only last.ckpt, at the end
    eval_every N: validate every N steps
    log_every N: log train metrics every N steps
    accelerator: auto, cpu, gpu
    devices: devices per node
    num_nodes: nodes
    compile: torch.compile the model
    profile: Lightning's profiler; its report goes into the run folder
    matmul_precision: float32 matmuls on a GPU: high allows TF32 (~10 bits of mantissa, several x faster), highest is exact fp32
    output_dir: run folder (default: runs/RUN_NAME)
    run_name: the run's name (default: model, preset, seed and time)
    logger: csv writes metrics.csv; wandb adds W&B, offline without credentials (default when installed)
    wandb_project: W&B project
    wandb_entity: W&B user or team (default: your default entity)
    group: W&B group, e.g. a sweep's name
    tags: W&B tags
    log_model: upload checkpoints as W&B artifacts at the end of training
    """
    model: str = "mlp"
    preset: Optional[str] = None
    max_steps: Length[PositiveInt] = 1000
    grad_clip: Optional[Positive] = None
    accumulate: PositiveInt = 1
    steps_per_call: Loop[Auto[PositiveInt]] = AUTO  # a continued run keeps its first start's K
    ema: Optional[Annotated[float, Range(0, 1)]] = None  # off: the course trains without weight averaging
    early_stop: Length[Optional[PositiveInt]] = None     # off: a run trains its --max-steps
    early_stop_on: Length[Literal[tuple(EARLY_STOP_ON)]] = "val/acc"
    precision: Literal[PRECISIONS] = "32-true"
    checkpoint: Literal["auto", "end"] = "auto"
    eval_every: Runtime[PositiveInt] = 100
    log_every: Runtime[PositiveInt] = 10
    accelerator: Runtime[str] = "auto"
    devices: Runtime[PositiveInt] = 1
    num_nodes: Runtime[PositiveInt] = 1
    compile: Runtime[bool] = False
    profile: Runtime[Optional[Literal[PROFILERS]]] = None  # off: simple costs ~1%, advanced and pytorch much more
    matmul_precision: Runtime[Literal["highest", "high", "medium"]] = "high"
    output_dir: Runtime[Optional[str]] = None
    run_name: Runtime[Optional[str]] = None
    logger: Runtime[Literal["csv", "wandb", "none"]] = "wandb" if importlib.util.find_spec("wandb") else "csv"
    wandb_project: Runtime[str] = "cifar10-lab"
    wandb_entity: Runtime[Optional[str]] = None
    group: Runtime[Optional[str]] = None
    tags: Runtime[list[str]] = field(default_factory=list)
    log_model: Runtime[bool] = False
