"""Seed statistics for report.py: mean ± std with a t-based 95% interval, and Welch's t-test with Hedges' g.

Pure Python (math only): Student's t distribution comes from the regularized incomplete beta function
(a continued fraction, Numerical Recipes 6.4), so no scipy is needed for a handful of seeds.

    summary([0.48, 0.47, 0.49])          -> {n, mean, std, ci_low, ci_high, half_width}
    compare(a, b)                        -> {diff, t, df, p, g, verdict, ...}: is b - a beyond seed noise?
"""
import math
import statistics

CONFIDENCE = 0.95  # the intervals' coverage
ALPHA = 0.05       # Welch's test: a difference with p below this is "beyond seed noise"
TEST = "Welch's t-test (two-sided, unequal variances)"


def _betacf(a, b, x):
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf2(t, df):
    """Two-sided tail P(|T| >= |t|) of Student's t with df (real, > 0) degrees of freedom."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_ppf(p, df):
    """The p-quantile of Student's t with df degrees of freedom, p in (0.5, 1): bisection on t_sf2."""
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > 2 * (1 - p):
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf2(mid, df) > 2 * (1 - p) else (lo, mid)
    return (lo + hi) / 2


def summary(values):
    """n, mean, sample std and the t-based CONFIDENCE interval of the mean; std and interval None for n < 2."""
    values = [float(v) for v in values]
    n = len(values)
    out = dict(n=n, mean=statistics.fmean(values) if n else None, std=None, ci_low=None, ci_high=None, half_width=None)
    if n >= 2:
        out["std"] = statistics.stdev(values)
        out["half_width"] = t_ppf(1 - (1 - CONFIDENCE) / 2, n - 1) * out["std"] / math.sqrt(n)
        out["ci_low"], out["ci_high"] = out["mean"] - out["half_width"], out["mean"] + out["half_width"]
    return out


def compare(a, b, alpha=ALPHA):
    """Welch's t-test of mean(b) - mean(a), its CONFIDENCE interval, and the effect size.

    Returns diff, t, df, p, ci_low/ci_high of the difference, Cohen's d and Hedges' g (d with the
    small-sample correction; pooled std), n_a, n_b, test and verdict. p is None when a group has
    fewer than 2 runs or neither varies (the test is then undefined); the verdict says which."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    na, nb = len(a), len(b)
    out = dict(test=TEST, alpha=alpha, n_a=na, n_b=nb, diff=None, t=None, df=None, p=None, ci_low=None, ci_high=None,
               cohens_d=None, hedges_g=None, verdict=None)
    if not na or not nb:
        out["verdict"] = "no runs to compare"
        return out
    out["diff"] = statistics.fmean(b) - statistics.fmean(a)
    if na < 2 or nb < 2:
        out["verdict"] = "undecided: each side needs at least 2 seeds"
        return out
    va, vb = statistics.variance(a), statistics.variance(b)
    se2 = va / na + vb / nb
    pooled = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    if pooled > 0:
        out["cohens_d"] = out["diff"] / pooled
        out["hedges_g"] = out["cohens_d"] * (1 - 3 / (4 * (na + nb) - 9))
    if se2 == 0:
        out["verdict"] = "undecided: no run varies with the seed, so there is no noise to test against"
        return out
    se = math.sqrt(se2)
    out["t"] = out["diff"] / se
    out["df"] = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))  # Welch-Satterthwaite
    out["p"] = t_sf2(out["t"], out["df"])
    half = t_ppf(1 - (1 - CONFIDENCE) / 2, out["df"]) * se
    out["ci_low"], out["ci_high"] = out["diff"] - half, out["diff"] + half
    out["verdict"] = ("beyond seed noise" if out["p"] < alpha else "within seed noise") + f" (p {'<' if out['p'] < alpha else '>='} {alpha})"
    return out
