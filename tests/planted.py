"""Files that would run code when read carelessly: the proof a reader is safe is that the marker file
their payload creates never appears."""
import pickle

import torch


class Payload:
    """Unpickling this calls open(path, "w"), creating the file: the proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant(path, kind, marker):
    """Write at `path` a file of `kind` whose reading would create `marker`:
        ckpt     torch.save's zip archive, shaped like a checkpoint (global_step, state_dict) plus the payload
        pickle   a bare pickle of the payload
        yaml     PyYAML's python/object/apply tag (what yaml.load or unsafe_load would call)"""
    if kind == "ckpt":
        torch.save({"global_step": 5, "epoch": 0, "state_dict": {}, "callbacks": Payload(marker)}, path)
    elif kind == "pickle":
        with open(path, "wb") as f:
            pickle.dump(Payload(marker), f)
    elif kind == "yaml":
        with open(path, "w") as f:
            f.write(f'model: !!python/object/apply:builtins.open ["{marker}", "w"]\n')
    else:
        raise ValueError(kind)
    return str(path)
