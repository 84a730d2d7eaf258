"""Using a finished run: load it, test it, classify with it, export it. evaluate.py, predict.py and export.py
are this package's commands; training/ never imports it.

    loading.py  load_run(run_dir) -> (model with .preprocess, config); add_weights_flag (--raw-weights)
    data.py     the run's test data (test_data, test_images)
    plots.py    evaluate.py's figures (confusion, calibration, mistakes)
"""
from .loading import add_weights_flag, load_run

__all__ = ["add_weights_flag", "load_run"]
