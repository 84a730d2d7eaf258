"""Settings: declared once, in the classes' __init__ signatures and config/settings.py; everything else
(the parser, --help, --print-config, checks, which keys go to which class) is made from them.
Stdlib and yaml only: parsing, help and config errors import no torch.

    types.py       the types a setting may have (bounds, choices, Runtime / Length)
    signatures.py  the models (discovered in models/*.py) and the data module's settings, read with ast
    settings.py    the settings that are no class's: steps, evaluation, devices, logging, output
    parser.py      a setting -> its flag (parsing, checks, help)
    resolve.py     the layers (defaults < configs/models.yaml < preset < --config < flags) -> one config
    checks.py      near-miss suggestions and one-line problem lists
"""
