"""FastResNet: the fast recipe's net and its training, after KellerJordan/cifar10-airbench (airbench94).

`--preset fast` (configs/fast.yaml) sets the optimizer, data and run flags that go with it.
What makes it fast, and where it lives:

    small net, 3 conv groups, ~2M params ......... FastNet (below)
    frozen whitening layer, set from the data .... FastNet.init_whitening, FastResNet.on_train_batch_start
    identity-initialised convs ................... dirac_conv
    BN with frozen scale, fast-learning bias ..... frozen_scale_bn, param_groups
    warm-up then decay, never to zero ............ triangle
    lookahead (EMA pulled back every 5 steps) .... Lookahead, FastResNet.on_train_batch_end
    flip + shift test-time augmentation .......... models/conv.py tta_logits
    label smoothing, Nesterov SGD, batch 1024 .... --preset fast
    bf16, channels_last, data on the GPU ......... --preset fast, datamodules/
    no host-device sync in a training step ....... FastResNet (its hooks only use Python numbers)

    x (B, 3, 32, 32) -> whiten (B, 24, 31, 31) -> group (B, 64, 15, 15) -> group (B, 256, 7, 7)
      -> group (B, 256, 3, 3) -> maxpool (B, 256, 1, 1) -> linear (B, 10) -> x 1/9
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv import ConvClassifier

HYP = dict(
    widths=(64, 256, 256),  # airbench94's; wider buys accuracy with time, this is its 94% point
    whiten_kernel=2,        # 2x2 patches: 12 dims, whitened into 12 filters and their negatives (24 channels)
    whiten_eps=5e-4,        # keeps the near-zero eigen-directions from blowing up
    whiten_bias_epochs=3,   # the whitening bias learns for 3 epochs, then freezes like its weights
    bn_momentum=0.4,        # PyTorch's convention (airbench's 0.6 the other way): running stats track fast,
                            # so they fit the weights of a net that changes a lot in ~500 steps
    bn_eps=1e-12,
    bn_bias_lr_scale=64.0,  # BN biases are the only per-channel shifts; they need a much larger lr
    logit_scale=1 / 9,      # a cooler softmax at init; with label smoothing this was airbench's best
    lr_start=0.2, lr_peak_at=0.23, lr_end=0.07,  # triangle(): lr factor over training
    lookahead_every=5, lookahead_decay=0.95 ** 5, lookahead_pow=3.0,  # Lookahead: decay * progress ** pow
)


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
        return self.head(self.body(self.whiten(x))) * HYP["logit_scale"]

    @torch.no_grad()
    def init_whitening(self, x, reduce=lambda t: t):
        """Set the first conv to whiten the 2x2 patches of x: its filters are the covariance's
        eigenvectors scaled by 1/sqrt(eigenvalue), and their negatives (GELU keeps both signs).

        A decorrelated input makes the first steps of SGD well-conditioned for free: the layer costs
        one tiny eigendecomposition and is never trained. `reduce` averages the covariance over ranks.
        """
        k = self.whiten.kernel_size
        patches = F.unfold(x.float(), k).transpose(1, 2).flatten(0, 1)  # (B * 31 * 31, 12), in (c, kh, kw) order
        cov = reduce(patches.T @ patches / len(patches))                 # (12, 12)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)              # columns are eigenvectors
        filters = (eigenvectors.T / (eigenvalues + HYP["whiten_eps"]).sqrt()[:, None]).view(-1, 3, *k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


def param_groups(net, lr, weight_decay):
    """SGD groups: BN biases learn bn_bias_lr_scale times faster but decay the same amount per step."""
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
    """The fast recipe as a LightningModule: FastNet trained with its own SGD groups, lr schedule,
    whitening init, whitening-bias freeze and lookahead. It brings its own optimizer and schedule, so
    `optimizer`, `schedule` and `warmup_steps` are not settings of it (fixed_params).

    Every per-step hook below reads Python numbers only (step and epoch counters): nothing in a
    training step waits for the GPU, and nothing is computed or logged that the step does not need.
    """
    fixed_params = ("optimizer", "schedule", "warmup_steps")

    def __init__(self, **kwargs):
        super().__init__(optimizer="sgd", **kwargs)
        self.lookahead = None  # the slow weights, made when training starts (on the training device)

    def build_net(self):
        return FastNet(self.hparams.num_classes)

    def make_optimizer(self, total_steps):
        """(Nesterov SGD over param_groups, the triangle lr schedule stepped per optimizer step)."""
        hp = self.hparams
        opt = torch.optim.SGD(param_groups(self.net, hp.lr, hp.weight_decay), momentum=hp.momentum,
                              nesterov=hp.nesterov and hp.momentum > 0)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, triangle(max(total_steps, 1)))

    def configure_optimizers(self):
        opt, sched = self.make_optimizer(self.trainer.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx):
        if self.global_step == 0 and batch_idx == 0:  # a fresh run, not a resumed one
            self.net.init_whitening(batch[0], reduce=lambda t: self.trainer.strategy.reduce(t, reduce_op="mean"))

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
        if "lookahead" in checkpoint:
            self.lookahead = Lookahead(self.net)
            self.lookahead.ema = checkpoint["lookahead"]
