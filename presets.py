"""Presets: named sets of flags, all in this one file. Explicit flags override them.

`model` pins a preset to a model (then `--model` may be left out); without it a preset applies to
whichever model accepts its flags, and flags a model does not take are dropped for that model.
"""

PRESETS = {
    # airbench94's recipe (models/fast_resnet.py has the net and the why), through train.py and Lightning.
    # Its hyperparameters, converted from a summed to our mean loss: lr = 11.5 / (1 + 1 / (1 - 0.85)) = 1.5
    # per step, and a weight decay of 0.0153 / 7.67 per step = lr * 1.33e-3.
    "fast": dict(
        help="speed recipe (airbench94-style net, 9.9 epochs); aims at 94% test acc on one GPU in seconds",
        model="resnet",
        flags=dict(arch="fast", optimizer="sgd", lr=1.5, momentum=0.85, nesterov=True, weight_decay=1.33e-3,
                   label_smoothing=0.2,            # soft targets: better calibrated, and +acc on short runs
                   batch_size=1024, max_steps=476,  # 9.9 epochs of 48 full batches of the 50k images
                   augment=True, crop_padding=2,    # shifts of up to 2 px, as airbench's (which pads by reflection)
                   val_size=0,                      # train on all 50k; validation mid-run costs time, tells nothing
                   tta=2, eval_batch_size=2000,     # mirror + shift test-time augmentation
                   channels_last=True, precision="bf16-mixed",  # tensor-core layout and dtype (GPU)
                   log_every=50, checkpoint="end"),  # Lightning overhead that costs without value in a 5 s run
    ),
    "seed-best": dict(
        help="best row of the course's Table 1: adam, hidden 64 128 256, batch norm, 10000 steps (course 0.531)",
        flags=dict(optimizer="adam", hidden=[64, 128, 256], batchnorm=True, max_steps=10000),
    ),
    # The three arms of sweeps/norm.yaml (a W&B grid cannot pair --batchnorm with one model only).
    "norm-none": dict(help="MLP without normalisation (sweeps/norm.yaml)", model="mlp", flags={}),
    "norm-batch": dict(help="MLP with batch norm (sweeps/norm.yaml)", model="mlp", flags=dict(batchnorm=True)),
    "norm-layer": dict(help="MLP with the custom LayerNorm (sweeps/norm.yaml)", model="layernorm_mlp", flags={}),
    # The best MLP we measured (README, Experiments: mlp-best, with its ablation). Width, steps and
    # mirrored images bought the most; z-scored inputs with PyTorch's init replace the course's pixel
    # units and N(0, 1e-4) init, which Adam-type optimizers and two wide layers need. Random crops cost
    # accuracy (an MLP has no translation invariance to learn from them), so only flips: crop_padding=0.
    "mlp-best": dict(
        help="best MLP measured here (0.62): 1024-1024 ReLU, batch norm, dropout, AdamW + cosine, flips",
        model="mlp",
        flags=dict(hidden=[1024, 1024], activation="relu", batchnorm=True, dropout=0.2, init="default",
                   optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine", warmup_steps=200,
                   label_smoothing=0.1, normalize="standard", augment=True, crop_padding=0, batch_size=128,
                   max_steps=10000, eval_every=1000),
    ),
}
