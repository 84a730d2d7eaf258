"""train.py with one callback more, for the all-reduce test: every rank writes a digest of the training
batches it saw and of the weights it ended with.

    srun python tests/slurm/rank_weights.py OUT_DIR TRAIN_FLAGS...

writes OUT_DIR/rank<global rank>.json: {"rank", "world_size", "node", "batches", "initial", "weights"}:
SHA-256 digests of the tensors' bytes of the training batches, the weights at the start and at the end
(in state_dict order, the checkpoint's too).
"""
import hashlib
import json
import os
import sys

import pytorch_lightning as pl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def weights_digest(state_dict):
    """The SHA-256 of every tensor in a state dict, in its order: equal digests are equal weights, bit for bit."""
    h = hashlib.sha256()
    for name, tensor in state_dict.items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class RankDigest(pl.Callback):
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.batches = hashlib.sha256()
        self.initial = None

    def on_train_start(self, trainer, pl_module):
        self.initial = weights_digest(pl_module.state_dict())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        for tensor in batch:
            self.batches.update(tensor.detach().cpu().contiguous().numpy().tobytes())

    def on_train_end(self, trainer, pl_module):
        record = dict(rank=trainer.global_rank, world_size=trainer.world_size, node=os.environ.get("SLURMD_NODENAME"),
                      batches=self.batches.hexdigest(), initial=self.initial, weights=weights_digest(pl_module.state_dict()))
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, f"rank{trainer.global_rank}.json"), "w") as f:
            json.dump(record, f)


if __name__ == "__main__":
    from train import main

    main(sys.argv[2:], callbacks=[RankDigest(sys.argv[1])])
