"""Using a finished run: load it, test it, classify with it, export it. evaluate.py, predict.py and export.py
are this package's commands; training/ never imports it.

    loading.py  load_run(run_dir) -> (model with .preprocess, config)
    flags.py    add_weights_flag (--raw-weights); no torch, so the commands parse their flags first
    data.py     the run's test data (test_data, test_images)
    plots.py    evaluate.py's figures (confusion, calibration, mistakes)

`from inference import load_run` imports torch when load_run is first looked up, not with the package.
"""
from .flags import add_weights_flag


def __getattr__(name):
    if name == "load_run":
        from .loading import load_run
        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["add_weights_flag", "load_run"]
