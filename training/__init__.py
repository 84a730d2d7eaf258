"""The training run: everything between parsed flags and a finished run folder.

    config.py      defaults, the parser, --config files and presets (configs/), layering, validation
    run.py         train(cfg): data, model, Trainer, loggers -> results.json
    trainer.py     the Trainer and its callbacks;  callbacks.py, loggers.py, resume.py: what they use
"""
