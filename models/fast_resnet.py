"""FastResNet: the fast recipe's net and its training, after Keller Jordan's airbench94 ("94% on CIFAR-10 in
3.29 seconds on a single GPU", 2024; the airbench package, 0.1.8).

The recipe is in two places: the net's and the training's constants here (HYP), and the settings that go
with them in configs/models.yaml (fast_resnet: lr, momentum, batch, steps, augmentation, TTA, ...).
What makes it fast, and where it lives:

    small net, 3 conv groups, ~2M params ......... FastNet (below)
    frozen whitening layer, fitted to clean ...... FastNet.init_whitening, FastResNet.on_train_start
      training images (5000, unaugmented)
    identity-initialised convs ................... dirac_conv
    BN with frozen scale, fast-learning bias ..... frozen_scale_bn, param_groups
    warm-up then decay, never to zero ............ triangle
    lookahead (EMA pulled back every 5 steps) .... Lookahead, FastResNet.on_train_batch_end
    crops padded by reflection, flips that ....... models.yaml crop_pad / flips, datamodules/augment.py
      alternate by epoch; made once an epoch on
      the device, a slice per step
    flip + shift test-time augmentation .......... models/conv.py tta_logits
    label smoothing, Nesterov SGD, batch 1024 .... configs/models.yaml
    fp16 weights, fp32 BatchNorm, no autocast .... net_dtype, FastResNet.cast_net (GPU; float32 on a CPU)
    summed loss (scaled by 1024) ................. HYP loss_scale: fp16 gradients stay above underflow
    channels_last, data on the GPU ............... configs/models.yaml, datamodules/
    no host-device sync in a training step ....... FastResNet (its hooks only use Python numbers)

    x (B, 3, 32, 32) -> whiten (B, 24, 31, 31) -> group (B, 64, 15, 15) -> group (B, 256, 7, 7)
      -> group (B, 256, 3, 3) -> maxpool (B, 256, 1, 1) -> linear (B, 10) -> x 1/9

airbench94 counts its lr and weight decay per 1024 examples of a summed loss (lr 11.5, weight decay
0.0153, momentum 0.85); configs/models.yaml holds them per step of a mean loss, like every other model here:
    lr           = 11.5 / (1 + 1 / (1 - 0.85))  = 1.5
    weight_decay = 0.0153 / 11.5                  = 1.33e-3  (a decay of lr * weight_decay per step)
make_optimizer turns them back into airbench94's SGD settings for its summed loss (loss_scale).
"""
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv import ConvClassifier

HYP = dict(
    widths=(64, 256, 256),  # airbench94's; wider buys accuracy with time, this is its 94% point
    whiten_kernel=2,        # 2x2 patches: 12 dims, whitened into 12 filters and their negatives (24 channels)
    whiten_eps=5e-4,        # added to each eigenvalue (variance of normalised pixels): near-zero ones stay finite
    whiten_images=5000,     # images the whitening is fitted to: the split's first (a seeded sample), unaugmented
    whiten_bias_epochs=3,   # epochs the whitening bias learns, then it freezes like its weights
    bn_momentum=0.4,        # PyTorch's convention (airbench's 0.6 the other way): running stats track fast,
                            # so they fit the weights of a net that changes a lot in ~500 steps
    bn_eps=1e-12,
    bn_bias_lr_scale=64.0,  # BN biases are the only per-channel shifts; they need a much larger lr
    logit_scale=1 / 9,      # a cooler softmax at init; with label smoothing this was airbench's best
    lr_start=0.2, lr_peak_at=0.23, lr_end=0.07,  # triangle(): lr factors at the start and end, peak at 23% of steps
    lookahead_every=5, lookahead_decay=0.95 ** 5, lookahead_pow=3.0,  # every 5 steps: decay * (step / total) ** 3
    loss_scale=1024,        # the loss is summed over a 1024 batch, as airbench94's, and the SGD lr divided by
                            # it: the same steps, with fp16 gradients 1024x further from underflow
)
# The weights' dtype. auto: float16 on a GPU, airbench94's choice (not measured against bfloat16 here: no GPU
# was lent to the session that made it), float32 on a CPU, whose float16 math is emulated (one forward and
# backward of 4 images: 3.3 s in float16, 0.06 s in bfloat16, on this project's 2 shared CPU cores).
NET_DTYPES = ("auto", "float16", "bfloat16", "float32")


def dirac_conv(c_in, c_out):
    """3x3 conv, no bias (BN follows), whose first c_in filters start as the identity.

    The net then starts close to a residual net (the input passes through) without skip connections,
    which keeps the graph short and fast.
    """
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    nn.init.dirac_(conv.weight.data[:c_in])
    return conv


def frozen_scale_bn(channels):
    """BatchNorm whose scale stays 1: a learned scale is redundant in front of GELU + the next conv's
    weights, and leaving it out lets the bias alone take the large learning rate (param_groups)."""
    bn = nn.BatchNorm2d(channels, eps=HYP["bn_eps"], momentum=HYP["bn_momentum"])
    bn.weight.requires_grad_(False)
    return bn


class ConvGroup(nn.Sequential):
    """conv -> maxpool 2 -> BN -> GELU -> conv -> BN -> GELU: pooling early halves the second conv's work."""

    def __init__(self, c_in, c_out):
        super().__init__(dirac_conv(c_in, c_out), nn.MaxPool2d(2), frozen_scale_bn(c_out), nn.GELU(),
                         dirac_conv(c_out, c_out), frozen_scale_bn(c_out), nn.GELU())


class FastNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        k, widths = HYP["whiten_kernel"], HYP["widths"]
        self.whiten = nn.Conv2d(3, 2 * 3 * k * k, k, bias=True)  # (B, 24, 31, 31); set by init_whitening
        self.whiten.weight.requires_grad_(False)
        nn.init.zeros_(self.whiten.bias)
        groups, c = [], self.whiten.out_channels
        for w in widths:
            groups.append(ConvGroup(c, w))
            c = w
        self.body = nn.Sequential(nn.GELU(), *groups, nn.MaxPool2d(3), nn.Flatten())  # (B, 256)
        self.head = nn.Linear(c, num_classes, bias=False)

    def forward(self, x):
        """Inputs in the weights' dtype (float16 when cast_net made them so); logits in float32."""
        x = x.to(self.whiten.weight.dtype)
        return (self.head(self.body(self.whiten(x))) * HYP["logit_scale"]).float()

    @torch.no_grad()
    def init_whitening(self, x):
        """Set the first conv to whiten the 2x2 patches of x (clean training images, normalised): its
        filters are the patch covariance's eigenvectors scaled by 1/sqrt(eigenvalue + whiten_eps), and
        their negatives (GELU keeps both signs).

        A decorrelated input makes the first steps of SGD well-conditioned for free: the layer costs
        one tiny eigendecomposition and is never trained. Fitted to augmented images, zero-padded
        borders would shrink half of the whitened variances.
        """
        k = self.whiten.kernel_size
        patches = F.unfold(x.float(), k).transpose(1, 2).flatten(0, 1)  # (B * 31 * 31, 12), in (c, kh, kw) order
        cov = patches.T @ patches / len(patches)                         # (12, 12)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)              # columns are eigenvectors
        filters = (eigenvectors.T / (eigenvalues + HYP["whiten_eps"]).sqrt()[:, None]).view(-1, 3, *k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


def param_groups(net, lr, weight_decay):
    """SGD groups: BN biases learn bn_bias_lr_scale times faster but decay the same amount per step
    (lr * weight_decay); every other trainable tensor (convs, the whitening bias, the head) at lr."""
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    is_bn = {id(m.bias) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    scale = HYP["bn_bias_lr_scale"]
    return [dict(params=[p for _, p in trainable if id(p) in is_bn], lr=lr * scale, weight_decay=weight_decay / scale),
            dict(params=[p for _, p in trainable if id(p) not in is_bn], lr=lr, weight_decay=weight_decay)]


def triangle(total):
    """lr factor at a step: lr_start -> 1 (linear, until lr_peak_at of training) -> lr_end (linear).

    A short warm-up lets the large lr settle BN and the momentum; ending above zero keeps the last
    steps useful, since lookahead already does the final averaging.
    """
    peak, start, end = max(int(HYP["lr_peak_at"] * total), 1), HYP["lr_start"], HYP["lr_end"]

    def f(step):
        if step < peak:
            return start + (1 - start) * step / peak
        return 1 + (end - 1) * min((step - peak) / max(total - peak, 1), 1.0)
    return f


class Lookahead:
    """Every few steps: ema <- lerp(ema, weights, 1 - decay), then weights <- ema.

    The decay grows as progress ** 3: early training moves freely, the end averages strongly, which
    is what a short run needs instead of a long low-lr tail. BN running stats are averaged too.
    """

    def __init__(self, module):
        self.ema = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, module, decay):
        state = module.state_dict()
        emas, live = list(self.ema.values()), [state[k] for k in self.ema]
        torch._foreach_lerp_(emas, live, 1 - decay)  # one kernel for all tensors on a GPU, not one each
        torch._foreach_copy_(live, emas)

    def decay(self, step, total):
        return HYP["lookahead_decay"] * (step / total) ** HYP["lookahead_pow"]


class FastResNet(ConvClassifier):
    """airbench94-style speed recipe (9.9 epochs, configs/models.yaml); aims at 94% on one GPU: --preset fast

    The fast recipe as a LightningModule: FastNet trained with its own SGD groups, lr schedule,
    whitening init, whitening-bias freeze and lookahead. It brings its own optimizer and schedule, so
    `optimizer`, `schedule` and `warmup_steps` are not settings of it (fixed_params).

    net_dtype: the weights' dtype (NET_DTYPES), BatchNorm always float32; run it with --precision 32-true
    (configs/models.yaml), which leaves dtypes to the model: no autocast and its casts.

    Every per-step hook below reads Python numbers only (step and epoch counters): nothing in a
    training step waits for the GPU, and nothing is computed or logged that the step does not need.
    """
    name = "fast_resnet"
    fixed_params = ("optimizer", "schedule", "warmup_steps")

    def __init__(self, net_dtype: Literal[NET_DTYPES] = "auto", **kwargs):
        """
        net_dtype: weights' dtype, BatchNorm in float32; auto = float16 on a GPU, float32 on a CPU
        """
        if net_dtype not in NET_DTYPES:
            raise ValueError(f"net_dtype must be one of {NET_DTYPES}, got {net_dtype!r}")
        super().__init__(optimizer="sgd", **kwargs)
        self.lookahead = None  # the slow weights, made when training starts (on the training device)

    def build_net(self):
        return FastNet(self.hparams.num_classes)

    def cast_net(self, device):
        """The weights to net_dtype ("auto": float16 on CUDA, else float32), BatchNorm's to float32."""
        name = self.hparams.net_dtype
        if name == "auto":
            name = "float16" if torch.device(device).type == "cuda" else "float32"
        self.net.to(getattr(torch, name))
        for m in self.net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.float()

    def setup(self, stage):
        self.cast_net(self.trainer.strategy.root_device)  # before the optimizer is made from the weights

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * HYP["loss_scale"]  # logged: the mean loss

    def make_optimizer(self, total_steps):
        """(Nesterov SGD over param_groups, the triangle lr schedule stepped per optimizer step), for a
        loss scaled by loss_scale: the lr divided by it, the weight decay multiplied (the same decay)."""
        hp, scale = self.hparams, HYP["loss_scale"]
        opt = torch.optim.SGD(param_groups(self.net, hp.lr / scale, hp.weight_decay * scale), momentum=hp.momentum,
                              nesterov=hp.nesterov and hp.momentum > 0)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, triangle(max(total_steps, 1)))

    def configure_optimizers(self):
        opt, sched = self.make_optimizer(self.trainer.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self):
        if self.global_step == 0:  # a fresh run; a continued one has its whitening in the checkpoint
            self.net.init_whitening(self.trainer.train_dataloader.clean(HYP["whiten_images"]))

    def on_before_optimizer_step(self, optimizer):
        if self.current_epoch >= HYP["whiten_bias_epochs"]:
            self.net.whiten.bias.grad = None  # frozen from here on: SGD skips a parameter without a grad

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.lookahead_step(self.global_step, self.trainer.max_steps)

    def lookahead_step(self, step, total):
        """After optimizer step `step` (1-based count) of `total`: the lookahead update, if one is due."""
        if self.lookahead is None:
            self.lookahead = Lookahead(self.net)
        if step % HYP["lookahead_every"] == 0:
            self.lookahead.update(self.net, self.lookahead.decay(step, total))
        if step >= total:  # the run ends on the averaged weights
            self.lookahead.update(self.net, 1.0)

    def on_save_checkpoint(self, checkpoint):
        if self.lookahead is not None:
            checkpoint["lookahead"] = self.lookahead.ema

    def on_load_checkpoint(self, checkpoint):
        if "lookahead" in checkpoint:  # in the weights' dtype and device here (a run may move: GPU fp16 -> CPU)
            self.lookahead = Lookahead(self.net)
            state = self.net.state_dict()
            self.lookahead.ema = {k: v.to(state[k]) for k, v in checkpoint["lookahead"].items()}
