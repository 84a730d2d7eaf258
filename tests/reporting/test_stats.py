"""reporting/stats.py against Student's t table (3 decimals, so within 5e-4) and sums done by hand."""
import math

import pytest

from reporting import stats

# Two-sided 95% critical values of Student's t, from any statistics table: df -> t
T_975 = {1: 12.706, 2: 4.303, 4: 2.776, 10: 2.228, 30: 2.042}


@pytest.mark.parametrize("df, t", T_975.items())
def test_t_quantile_and_tail_agree_with_the_table(df, t):
    assert stats.t_ppf(0.975, df) == pytest.approx(t, abs=5e-4)
    assert stats.t_sf2(stats.t_ppf(0.975, df), df) == pytest.approx(0.05, abs=1e-9)  # the two are inverses


def test_summary_is_mean_std_and_the_t_interval():
    s = stats.summary([0.48, 0.47, 0.49])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.48) and s["std"] == pytest.approx(0.01)
    assert s["half_width"] == pytest.approx(T_975[2] * 0.01 / math.sqrt(3), abs=5e-4 * 0.01 / math.sqrt(3))
    assert stats.summary([0.5])["ci_low"] is None  # one seed: no interval


def test_welch_and_hedges_g_by_hand():
    # a = 1, 2, 3 and b = 2, 3, 4: variances 1, difference 1, se sqrt(2/3), Welch df (2/3)^2 / (2 (1/3)^2 / 2) = 4,
    # pooled std 1, so Cohen's d 1 and Hedges' g 1 - 3 / (4 * 6 - 9) = 0.8
    r = stats.compare([1, 2, 3], [2, 3, 4])
    assert r["diff"] == pytest.approx(1) and r["t"] == pytest.approx(1 / math.sqrt(2 / 3)) and r["df"] == pytest.approx(4)
    assert r["hedges_g"] == pytest.approx(0.8) and r["verdict"].startswith("within seed noise")
    half = r["ci_high"] - r["diff"]
    assert half == pytest.approx(T_975[4] * math.sqrt(2 / 3), abs=5e-4 * math.sqrt(2 / 3))
    assert stats.compare([1], [2, 3])["verdict"].startswith("undecided")
