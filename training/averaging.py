"""--ema DECAY: an exponential moving average of the weights, through Lightning's EMAWeightAveraging.

After each optimizer step, ema <- decay * ema + (1 - decay) * weights (parameters and buffers, so
batch-norm statistics too; the first step copies). Validation runs on the averaged weights (so the
best-val checkpoint is chosen by them), and so does the test, of a checkpoint or of the final weights.

Each checkpoint holds both: `state_dict` the averaged weights (what load_run, evaluate, predict and
export read by default), `current_model_state` (runfolder.folder.RAW_STATE) the raw ones
(`--raw-weights`, and what training continues from), `averaging_state` the average's step count. A continued run restores both, so its
averaged weights equal those of the uninterrupted run.
"""
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging, with two changes for tests that follow a fit with the same Trainer:

    - testing a checkpoint keeps its averaged weights: Lightning's callback, still attached, answers
      the load by putting the raw weights back (as a continued fit needs), so a test of the best-val
      checkpoint would measure the raw weights, not the ones validation chose it by;
    - the averaged weights go into the model when the test of the final weights starts, not when
      training ends: a save of last.ckpt at the end of training then holds the raw weights as well.
    """

    def __init__(self, decay):
        super().__init__(decay=decay)
        self.decay = decay

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer, pl_module):
        pass

    def on_test_start(self, trainer, pl_module):
        if self._average_model is not None and trainer.ckpt_path is None:  # the final weights, not a file's
            self._copy_average_to_current(pl_module)

