"""Presets: the YAML files in this folder (`--preset NAME` reads NAME.yaml; training/config.py finds them).

This file makes the folder a package, so that `pip install .` installs the files beside the code.
"""
