"""W&B sweep files and a local runner for them (run_local.py)."""
