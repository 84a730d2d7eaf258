"""LayerNorm forward+backward time: our manual and autograd forms against F.layer_norm, same run.

    python -m bench.layernorm

Shapes are the MLP's: a batch of 200 at widths 256 and 1024. Each form is a module (torch's is
nn.LayerNorm, which calls F.layer_norm), so each pays the same module-call cost. One timed call runs
`calls` forward+backward passes (torch.autograd.grad, so nothing accumulates); ours and torch's take
turns (common.measure_pair), so a change in machine load hits both alike. The ratio is F.layer_norm's
median over ours (> 1 = ours faster). Goal: the manual backward within 2x of torch (ratio >= 0.5).
"""
import torch

from bench.common import measure_pair, print_table, row, torch_threads
from models.layernorm import LayerNormAutograd, LayerNormManualModule

SHAPES = [(200, 256), (200, 1024)]  # (batch, features)
CALLS, REPEATS = 20, 41            # forward+backward passes per timed call, timed calls per form
QUICK_CALLS, QUICK_REPEATS = 5, 5
THREADS = 1                         # common.torch_threads says why
FORMS = {"manual": (LayerNormManualModule, 0.5),  # (class, goal); autograd has none, it is the course's form
         "autograd": (LayerNormAutograd, None)}


def fwd_bwd(module, x, grad_y, calls):
    params = tuple(module.parameters())  # (gamma, beta) or (weight, bias)

    def run():
        for _ in range(calls):
            torch.autograd.grad(module(x), (x, *params), grad_y)
    return run


def rows(quick=False):
    calls, repeats = (QUICK_CALLS, QUICK_REPEATS) if quick else (CALLS, REPEATS)
    torch.manual_seed(0)
    out = []
    with torch_threads(THREADS):
        for batch, width in SHAPES:
            x = torch.randn(batch, width, requires_grad=True)
            grad_y = torch.randn(batch, width)
            baseline = fwd_bwd(torch.nn.LayerNorm(width), x, grad_y, calls)
            for name, (cls, goal) in FORMS.items():
                ours, theirs = measure_pair(fwd_bwd(cls(width), x, grad_y, calls), baseline, repeats)
                out.append(row(f"LayerNorm {name} fwd+bwd {batch}x{width} vs F.layer_norm", f"s / {calls} calls",
                               ours, theirs, higher_is_better=False, goal=goal))
    return out

if __name__ == "__main__":
    print_table(rows(), f"LayerNorm forward+backward, CPU, {THREADS} thread")
