"""Presets: named sets of flags, all in this one file. Explicit flags override them.

`model` pins a preset to a model (then `--model` may be left out); without it a preset applies to
whichever model accepts its flags, and flags a model does not take are dropped for that model.
"""

PRESETS = {
    "seed-best": dict(
        help="best row of the course's Table 1: adam, hidden 64 128 256, batch norm, 10000 steps (course 0.531)",
        flags=dict(optimizer="adam", hidden=[64, 128, 256], batchnorm=True, max_steps=10000),
    ),
}
