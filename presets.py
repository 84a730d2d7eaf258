"""Presets: named sets of flags, all in this one file. Explicit flags override them.

`model` pins a preset to a model (then `--model` may be left out); without it a preset applies to
whichever model accepts its flags, and flags a model does not take are dropped for that model.
"""

PRESETS = {
    "seed-best": dict(
        help="best row of the course's Table 1: adam, hidden 64 128 256, batch norm, 10000 steps (course 0.531)",
        flags=dict(optimizer="adam", hidden=[64, 128, 256], batchnorm=True, max_steps=10000),
    ),
    # The three arms of sweeps/norm.yaml (a W&B grid cannot pair --batchnorm with one model only).
    "norm-none": dict(help="MLP without normalisation (sweeps/norm.yaml)", model="mlp", flags={}),
    "norm-batch": dict(help="MLP with batch norm (sweeps/norm.yaml)", model="mlp", flags=dict(batchnorm=True)),
    "norm-layer": dict(help="MLP with the custom LayerNorm (sweeps/norm.yaml)", model="layernorm_mlp", flags={}),
}
