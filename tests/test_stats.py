"""Intervals of evaluations and comparisons: Wilson and Newcombe by hand, the probability of
improvement and its bootstrap on cases small enough to enumerate, ranges never left."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmopsd.compare import finalise
from mmopsd.evaluation.report import compare_table
from mmopsd.evaluation.stats import (
    pooled_difference,
    pooled_rate,
    probability_of_improvement,
    wilson_interval,
)


def test_wilson_interval_by_hand():
    # 8 of 10 at 95%: [0.4902, 0.9433]; 0 of 10: [0, 0.2775] (the textbook values)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_pooled_rate_pools_the_episodes_of_every_seed():
    got = pooled_rate([0.5, 0.75], [4, 4])  # 2 + 3 wins in 8 episodes
    assert got["mean"] == 0.625 and (got["seeds"], got["episodes"]) == (2, 8)
    assert (got["low"], got["high"]) == pytest.approx(wilson_interval(5, 8))
    assert got["per_seed"] == [0.5, 0.75]


def test_newcombe_difference_by_hand():
    after, before = pooled_rate([0.8], [10]), pooled_rate([0.4], [10])
    got = pooled_difference(after, before)
    l1, u1 = wilson_interval(8, 10)
    l2, u2 = wilson_interval(4, 10)
    assert got["mean"] == pytest.approx(0.4)
    assert got["low"] == pytest.approx(0.4 - math.sqrt((0.8 - l1) ** 2 + (u2 - 0.4) ** 2))
    assert got["high"] == pytest.approx(0.4 + math.sqrt((u1 - 0.8) ** 2 + (0.4 - l2) ** 2))
    assert got["per_seed"] == pytest.approx([0.4])


def test_probability_of_improvement_is_one_when_every_run_of_x_beats_every_run_of_y():
    sure = probability_of_improvement([1.0, 1.0], [0.0, 0.0], [4, 4], [4, 4], reps=200)
    assert (sure["p"], sure["low"], sure["high"]) == (1.0, 1.0, 1.0)
    got = probability_of_improvement([0.75, 1.0], [0.25, 0.0], [8, 8], [8, 8], reps=200)
    assert got["p"] == 1.0 and 0.0 <= got["low"] <= got["high"] <= 1.0
    flipped = probability_of_improvement([0.25, 0.0], [0.75, 1.0], [8, 8], [8, 8], reps=200)
    assert flipped["p"] == 0.0


def test_bootstrap_of_a_case_small_enough_to_enumerate():
    # X's runs score 1 and 0 (every episode the same, so only the seeds are resampled), Y's 0:
    # P = (1 + 0.5) / 2. Resampling X's two seeds gives {1, 1} (P = 1, probability 1/4),
    # {1, 0} (0.75, 1/2) or {0, 0} (0.5, 1/4): the 95% interval is [0.5, 1].
    got = probability_of_improvement([1.0, 0.0], [0.0], [4, 4], [4], reps=4000, seed=1)
    assert got["p"] == 0.75
    assert (got["low"], got["high"]) == (0.5, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 16), st.integers(1, 16)), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 16), st.integers(1, 16)), min_size=1, max_size=4),
)
def test_intervals_never_leave_their_range(xs, ys):
    xr = [min(k, n) / n for k, n in xs]
    yr = [min(k, n) / n for k, n in ys]
    a, b = pooled_rate(xr, [n for _, n in xs]), pooled_rate(yr, [n for _, n in ys])
    for r in (a, b):
        assert 0.0 <= r["low"] <= r["mean"] <= r["high"] <= 1.0
    if len(xr) == len(yr):
        d = pooled_difference(a, b)
        assert -1.0 <= d["low"] <= d["mean"] <= d["high"] <= 1.0
    p = probability_of_improvement(xr, yr, [n for _, n in xs], [n for _, n in ys], reps=50)
    assert 0.0 <= p["low"] <= p["high"] <= 1.0 and 0.0 <= p["p"] <= 1.0


def test_the_comparison_table_names_its_intervals_and_stays_inside_zero_one():
    def run(after, before, retain, retain_before):
        return {
            "final": {"held_out": after, "held_out_before": before, "retain r": retain,
                      "retain change r": retain - retain_before},
            "episodes": {"held_out": 64, "held_out_before": 64, "retain r": 32},
            "curve": [(0, before), (10, after)],
        }  # fmt: skip

    summary = finalise({
        "seeds": [0, 1],
        "arms": {
            "grpo": {"runs": [run(1.0, 0.5, 0.5, 0.5), run(0.53, 0.5, 0.4, 0.5)], "episodes_per_step": 16},
            "opsd": {"runs": [run(0.9, 0.5, 0.6, 0.5), run(0.9, 0.5, 0.7, 0.5)], "episodes_per_step": 16},
        },
    })  # fmt: skip
    table = compare_table(summary)
    assert "Wilson" in table and "P(row > column)" in table
    assert "held_out (2 × 64)" in table and "retain r (2 × 32)" in table
    rate_cells = re.findall(r"\| (?!—)([0-9.]+) \[([-0-9.]+), ([-0-9.]+)\]", table)
    for mean, low, high in rate_cells:
        assert -1.0 <= float(low) <= float(mean) + 0.005 and float(high) <= 1.0
    held = summary["arms"]["grpo"]["final"]["held_out"]
    assert held["low"] >= 0.0 and held["high"] <= 1.0 and held["per_seed"] == [1.0, 0.53]
    assert summary["improvement"]["opsd"]["grpo"]["p"] == 0.5  # 0.9 loses to 1.0, beats 0.53
