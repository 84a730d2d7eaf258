"""The course's MLP in pure NumPy, with every backward pass written out by hand. Imports no torch.

    mlp = MLP(3072, [100], 10)
    probs = mlp.forward(x)                     # x (B, 3072) -> probs (B, 10)
    loss = ce.forward(probs, y)                # y (B,) int labels -> scalar
    mlp.backward(ce.backward(probs, y))        # fills every module's grads
    for m in mlp.modules: for k in m.params: m.params[k] -= lr * m.grads[k]

Notation (the course's): a batch is a matrix with one sample per row. For a module Y = f(X) inside a
network with scalar loss L, `backward` takes dL/dY (same shape as Y) and returns dL/dX (same shape
as X); 1 is a column of ones of length B, ⊙ the elementwise product. Everything is vectorised over
the batch. Arrays keep the dtype they are given (float64 for gradient checks, float32 to train fast).
"""
import numpy as np

INITS = ("course", "kaiming")


class LinearModule:
    """Y = X W^T + 1 b^T, with W (out, in) and b (out,), as torch.nn.Linear stores them."""

    def __init__(self, in_features, out_features, init="course", rng=None, dtype=np.float64):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        rng = rng if rng is not None else np.random.default_rng()
        # course: N(0, 1e-4), small enough that the first softmax is near uniform;
        # kaiming: N(0, 2 / in), which keeps the activations' scale through ReLU-like layers.
        std = 1e-4 if init == "course" else np.sqrt(2.0 / in_features)
        self.params = {"weight": rng.normal(0.0, std, (out_features, in_features)).astype(dtype),
                       "bias": np.zeros(out_features, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = None

    def forward(self, x):
        self.x = x  # (B, in), kept for the weight gradient
        return x @ self.params["weight"].T + self.params["bias"]  # (B, out)

    def backward(self, dout):
        """dL/dW = (dL/dY)^T X   (out, in)
        dL/db = 1^T dL/dY       (out,): the bias is added to every row, so its grad sums the rows
        dL/dX = dL/dY W         (B, in)
        """
        self.grads["weight"] = dout.T @ self.x
        self.grads["bias"] = dout.sum(0)
        return dout @ self.params["weight"]


class ELUModule:
    """Y = X where X > 0, else alpha (exp(X) - 1); elementwise."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha
        self.params, self.grads = {}, {}
        self.x = self.out = None

    def forward(self, x):
        self.x = x
        # expm1 of min(x, 0): exact near 0, and no overflow warning from the branch np.where discards
        self.out = np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))
        return self.out

    def backward(self, dout):
        """dL/dX = dL/dY ⊙ dY/dX, with dY/dX = 1 where X > 0, else alpha exp(X) = Y + alpha."""
        return dout * np.where(self.x > 0, 1.0, self.out + self.alpha)


class SoftMaxModule:
    """Y_ij = exp(X_ij) / sum_k exp(X_ik), row by row.

    Subtracting each row's max first leaves Y unchanged and keeps exp from overflowing: the largest
    term becomes exp(0) = 1, so the sum is in [1, C] and logits of any size give finite outputs.
    """

    def __init__(self):
        self.params, self.grads = {}, {}
        self.out = None

    def forward(self, x):
        e = np.exp(x - x.max(1, keepdims=True))
        self.out = e / e.sum(1, keepdims=True)
        return self.out  # (B, C), rows sum to 1

    def backward(self, dout):
        """Row i has Jacobian dY_i/dX_i = diag(Y_i) - Y_i^T Y_i (Y_i a row), so the vector-Jacobian product is
        dL/dX = Y ⊙ (dL/dY - (dL/dY ⊙ Y) 1 1^T),
        i.e. from each row of dL/dY subtract its Y-weighted mean, then scale by Y. No (C, C) matrix is built.
        """
        y = self.out
        return y * (dout - (dout * y).sum(1, keepdims=True))


class CrossEntropyModule:
    """L = -(1/B) sum_i sum_k T_ik log X_ik: X (B, C) probabilities; targets either integer labels y (B,),
    read as the one-hot T, or T itself (B, C): one-hot or soft rows summing to 1, as the course passes them.

    A probability of exactly 0 (softmax underflow) is read as the smallest positive normal number of
    its dtype (np.finfo(dtype).tiny), as is any smaller (subnormal) one, so loss and gradient stay
    finite: the loss of such a sample is -log(tiny), about 708 in float64 and 87 in float32. Larger
    probabilities are used as they are.
    """

    def forward(self, x, y):
        if y.ndim == 2:  # T (B, C)
            return -(y * np.log(np.maximum(x, np.finfo(x.dtype).tiny))).sum() / len(x)
        p = np.maximum(x[np.arange(len(y)), y], np.finfo(x.dtype).tiny)  # (B,) prob of the true class
        return -np.log(p).mean()

    def backward(self, x, y):
        """dL/dX = -(1/B) T ⊘ X; for integer labels nonzero only at each row's true class, -1 / (B X_iy)."""
        if y.ndim == 2:
            return -y / (len(x) * np.maximum(x, np.finfo(x.dtype).tiny))
        dx = np.zeros_like(x)
        rows = np.arange(len(y))
        dx[rows, y] = -1.0 / (len(y) * np.maximum(x[rows, y], np.finfo(x.dtype).tiny))
        return dx


class MLP:
    """X (B, n_inputs) -> [Linear -> ELU] x len(n_hidden) -> Linear -> SoftMax -> probabilities (B, n_classes).

    n_hidden is a list of widths; [] gives softmax regression. `forward` returns probabilities, as in
    the course, so the loss is CrossEntropyModule; `logits` stops before the softmax.
    """

    def __init__(self, n_inputs, n_hidden, n_classes, init="course", rng=None, dtype=np.float64):
        rng = rng if rng is not None else np.random.default_rng()
        widths = [n_inputs, *n_hidden, n_classes]
        self.modules = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.modules.append(LinearModule(fan_in, fan_out, init, rng, dtype))
            self.modules.append(ELUModule() if i < len(n_hidden) else SoftMaxModule())

    def logits(self, x):
        for m in self.modules[:-1]:
            x = m.forward(x)
        return x  # (B, n_classes)

    def forward(self, x):
        return self.modules[-1].forward(self.logits(x))

    def backward(self, dout):
        """Chain rule: each module turns dL/d(its output) into dL/d(its input), last module first."""
        for m in reversed(self.modules):
            dout = m.backward(dout)
        return dout  # dL/dX (B, n_inputs)

    def state_dict(self):
        """{"<module index>.<param>": array}, e.g. "0.weight" for the first Linear; the arrays are copies."""
        return {f"{i}.{k}": v.copy() for i, m in enumerate(self.modules) for k, v in m.params.items()}

    def load_state_dict(self, state):
        for i, m in enumerate(self.modules):
            for k, v in m.params.items():
                value = np.array(state[f"{i}.{k}"], dtype=v.dtype)  # a copy
                if value.shape != v.shape:
                    raise ValueError(f"{i}.{k}: expected shape {v.shape}, got {value.shape}")
                m.params[k] = value
