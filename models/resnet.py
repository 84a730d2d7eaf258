"""ResNet: the course's pre-activation ConvNet (`arch="course"`, the default).

A PreAct block is `x + Conv3x3(ReLU(BN(x)))`: stride 1, padding 1, the same channels in and out,
so the identity path carries the signal untouched and the block only adds a correction to it.

    | layer | what                               | channels | spatial |
    |-------|------------------------------------|----------|---------|
    | conv0 | conv 3x3, padding 1                | 3->64    | 32      |
    |       | PreAct                             | 64       | 32      |
    | conv1 | conv 1x1                           | 64->128  | 32      |
    |       | maxpool 3x3, stride 2, padding 1   |          | 16      |
    |       | 2 x PreAct                         | 128      | 16      |
    | conv2 | conv 1x1                           | 128->256 | 16      |
    |       | maxpool                            |          | 8       |
    |       | 2 x PreAct                         | 256      | 8       |
    | conv3 | conv 1x1                           | 256->512 | 8       |
    |       | maxpool                            |          | 4       |
    |       | 2 x PreAct                         | 512      | 4       |
    |       | maxpool                            |          | 2       |
    |       | 2 x PreAct                         | 512      | 2       |
    |       | maxpool                            |          | 1       |
    |       | BN, ReLU, flatten, linear          | 512->10  | 1       |

Every conv and the linear layer have a bias and PyTorch's default init, as in the course.
    x (B, 3, 32, 32) -> logits (B, 10)

`arch="fast"` is the speed recipe's net instead (models/fast_resnet.py, `--preset fast`); it brings its
own optimizer groups, lr schedule, whitening init and lookahead, wired in through the hooks below.
Options for either net: `channels_last` (NHWC, what GPU tensor cores want) and `tta` (test-time
augmentation in val/test: 1 = mirror, 2 = mirror + 1-pixel shifts).
"""
import torch
import torch.nn as nn

from . import fast_resnet as fast
from .base import Classifier


class PreAct(nn.Module):
    """x + Conv3x3(ReLU(BN(x))): a residual block whose branch sees normalised, rectified input."""

    def __init__(self, channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv(torch.relu(self.bn(x)))


def course_net(num_classes=10):
    pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)  # noqa: E731  (halves the side: 32->16->...->1)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), PreAct(64),                              # (B, 64, 32, 32)
        nn.Conv2d(64, 128, 1), pool(), PreAct(128), PreAct(128),                 # (B, 128, 16, 16)
        nn.Conv2d(128, 256, 1), pool(), PreAct(256), PreAct(256),                # (B, 256, 8, 8)
        nn.Conv2d(256, 512, 1), pool(), PreAct(512), PreAct(512),                # (B, 512, 4, 4)
        pool(), PreAct(512), PreAct(512),                                        # (B, 512, 2, 2)
        pool(), nn.BatchNorm2d(512), nn.ReLU(), nn.Flatten(), nn.Linear(512, num_classes),  # (B, 10)
    )


ARCHS = {"course": course_net, "fast": fast.FastNet}
TTA_LEVELS = (0, 1, 2)


class ResNet(Classifier):
    def __init__(self, arch="course", channels_last=False, tta=0, **optim):
        super().__init__(**optim)
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
        if tta not in TTA_LEVELS:
            raise ValueError(f"tta must be one of {TTA_LEVELS}, got {tta!r}")
        hp = self.hparams
        if arch == "fast" and (hp.optimizer != "sgd" or hp.schedule != "constant" or hp.warmup_steps):
            raise ValueError("arch fast brings its own lr schedule and needs sgd: use --preset fast "
                             f"(got optimizer {hp.optimizer}, schedule {hp.schedule}, warmup {hp.warmup_steps})")
        self.net = ARCHS[arch](self.hparams.num_classes)
        if channels_last:  # NHWC: the layout tensor cores want; convs keep it from layer to layer
            self.net.to(memory_format=torch.channels_last)
        self.lookahead = None  # the fast recipe's slow weights, made when training starts

    def forward(self, x):
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.hparams.tta and not self.training:
            return fast.tta_logits(self.net, x, self.hparams.tta)
        return self.net(x)

    # The fast recipe's training pieces; the course net (arch="course") uses none of them.

    @property
    def is_fast(self):
        return self.hparams.arch == "fast"

    def configure_optimizers(self):
        hp = self.hparams
        if not self.is_fast:
            return super().configure_optimizers()
        opt = torch.optim.SGD(fast.param_groups(self.net, hp.lr, hp.weight_decay), momentum=hp.momentum,
                              nesterov=hp.nesterov and hp.momentum > 0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fast.triangle(max(self.trainer.max_steps, 1)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx):
        if self.is_fast and self.global_step == 0 and batch_idx == 0:  # a fresh run, not a resumed one
            self.net.init_whitening(batch[0], reduce=lambda t: self.trainer.strategy.reduce(t, reduce_op="mean"))

    def on_before_optimizer_step(self, optimizer):
        if self.is_fast and self.current_epoch >= fast.HYP["whiten_bias_epochs"]:
            self.net.whiten.bias.grad = None  # frozen from here on: SGD skips a parameter without a grad

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if not self.is_fast:
            return
        step, total = self.global_step, self.trainer.max_steps
        if self.lookahead is None:
            self.lookahead = fast.Lookahead(self.net)
        if step % fast.HYP["lookahead_every"] == 0:
            self.lookahead.update(self.net, self.lookahead.decay(step, total))
        if step >= total:  # the run ends on the averaged weights
            self.lookahead.update(self.net, 1.0)

    def on_save_checkpoint(self, checkpoint):
        if self.lookahead is not None:
            checkpoint["lookahead"] = self.lookahead.ema

    def on_load_checkpoint(self, checkpoint):
        if "lookahead" in checkpoint:
            self.lookahead = fast.Lookahead(self.net)
            self.lookahead.ema = checkpoint["lookahead"]
