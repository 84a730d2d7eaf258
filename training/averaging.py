"""--ema DECAY: an exponential moving average of the weights, through Lightning's EMAWeightAveraging.

After each optimizer step, ema <- decay * ema + (1 - decay) * weights (parameters and float buffers,
so batch-norm statistics too; integer buffers such as batch norm's step counter are copied; the first
step copies all). Validation runs on the averaged weights (so the
best-val checkpoint is chosen by them), and so does the test, of a checkpoint or of the final weights.

Each checkpoint holds both: `state_dict` the averaged weights (what load_run, evaluate, predict and
export read by default), `current_model_state` (runfolder.folder.RAW_STATE) the raw ones
(`--raw-weights`, and what training continues from), `averaging_state` the average's step count. A continued run restores both, so its
averaged weights equal those of the uninterrupted run.
"""
import itertools

import torch
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn
from torch.optim.swa_utils import AveragedModel


class Average(AveragedModel):
    """torch's AveragedModel with an EMA update that reads nothing back to the host.

    torch's update_parameters reads its step count (a tensor on the model's device) twice per call:
    on a GPU, a wait for the step's kernels at every step. Here the count lives on the host too, and
    the update is one foreach lerp over the float tensors (torch's EMA path loops over them one by one).
    Integer buffers (batch norm's step counter) are copied, not averaged."""

    def __init__(self, model, decay, device=None):
        super().__init__(model, device=device, use_buffers=True)
        self.decay = decay
        self.updates = 0  # = n_averaged, on the host

    def update_parameters(self, model):
        mine = [t.detach() for t in itertools.chain(self.module.parameters(), self.module.buffers())]
        theirs = [t.detach().to(m.device) for t, m in
                  zip(itertools.chain(model.parameters(), model.buffers()), mine, strict=True)]
        floats = [(m, t) for m, t in zip(mine, theirs) if m.is_floating_point() and self.updates]
        for m, t in zip(mine, theirs):
            if not (m.is_floating_point() and self.updates):
                m.copy_(t)
        if floats:
            torch._foreach_lerp_([m for m, _ in floats], [t for _, t in floats], 1 - self.decay)
        self.n_averaged += 1
        self.updates += 1


class EMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging with the update of Average above, and two changes for tests that
    follow a fit with the same Trainer:

    - testing a checkpoint keeps its averaged weights: Lightning's callback, still attached, answers
      the load by putting the raw weights back (as a continued fit needs), so a test of the best-val
      checkpoint would measure the raw weights, not the ones validation chose it by;
    - the averaged weights go into the model when the test of the final weights starts, not when
      training ends: a save of last.ckpt at the end of training then holds the raw weights as well.
    """

    def __init__(self, decay):
        super().__init__(decay=decay)
        self.decay = decay

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":
            self._average_model = Average(pl_module, self.decay, device=self._device or pl_module.device)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
            self._average_model.updates = int(self._average_model.n_averaged)  # once, on a continue

    def on_train_end(self, trainer, pl_module):
        pass

    def on_test_start(self, trainer, pl_module):
        if self._average_model is not None and trainer.ckpt_path is None:  # the final weights, not a file's
            self._copy_average_to_current(pl_module)

