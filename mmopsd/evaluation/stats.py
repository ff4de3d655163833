"""Intervals that respect what they measure, for evaluations and comparisons.

- :func:`wilson_interval`: a success rate's 95% Wilson score interval (never outside [0, 1]).
- :func:`pooled_rate`: one method's success over several seeds, pooling every seed's
  evaluation episodes into one Wilson interval, the per-seed values kept beside it.
- :func:`pooled_difference`: a change between two pooled rates (after - before), with
  Newcombe's hybrid score interval (never outside [-1, 1]).
- :func:`probability_of_improvement`: rliable's P(X > Y) over the runs of two methods, with a
  stratified bootstrap interval that resamples seeds and, within each seed, its episodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.96  # the two-sided 95% quantile of the standard normal, as evaluations report it


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (95% by default); ``(0, 1)``
    when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends, no rounding
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def pooled_rate(rates: Sequence[float], episodes: Sequence[int]) -> dict[str, Any]:
    """Success pooled over runs: every run's ``rates[i]`` over ``episodes[i]`` episodes.

    Returns ``mean`` (successes over all episodes), ``low``/``high`` (the Wilson interval of
    the pooled episodes), ``seeds``, ``episodes`` (in all) and ``per_seed`` (the rates)."""
    if len(rates) != len(episodes):
        raise ValueError(f"{len(rates)} rates but {len(episodes)} episode counts")
    total = sum(episodes)
    wins = sum(round(r * n) for r, n in zip(rates, episodes))
    low, high = wilson_interval(wins, total)
    mean = wins / total if total else math.nan
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "seeds": len(rates),
        "episodes": total,
        "per_seed": list(rates),
        "interval": "wilson",
    }


def pooled_difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` of two :func:`pooled_rate` results, with Newcombe's hybrid score
    interval (his method 10: each rate's Wilson interval combined in quadrature)."""
    p1, p2 = after["mean"], before["mean"]
    d = p1 - p2
    low = d - math.sqrt((p1 - after["low"]) ** 2 + (before["high"] - p2) ** 2)
    high = d + math.sqrt((after["high"] - p1) ** 2 + (p2 - before["low"]) ** 2)
    per_seed = [a - b for a, b in zip(after["per_seed"], before["per_seed"])]
    return {
        "mean": d,
        "low": max(-1.0, low),
        "high": min(1.0, high),
        "seeds": after["seeds"],
        "episodes": after["episodes"],
        "per_seed": per_seed,
        "interval": "newcombe",
    }


def probability_of_improvement(
    x: Sequence[float],
    y: Sequence[float],
    x_episodes: Sequence[int],
    y_episodes: Sequence[int],
    *,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """rliable's P(X > Y): the chance that a run of X scores above a run of Y (ties count a
    half), over every pair of runs; with the 2.5 and 97.5 percentiles of a stratified
    bootstrap that resamples each method's runs (seeds) and, within each resampled run, its
    episodes (a run of ``k`` wins in ``n`` episodes is redrawn as Binomial(n, k / n) / n).

    Returns ``p``, ``low``, ``high`` and ``reps``."""
    rng = np.random.default_rng(seed)
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    xn, yn = np.asarray(x_episodes), np.asarray(y_episodes)
    boot = np.empty(reps)
    for r in range(reps):
        i = rng.integers(0, len(xs), len(xs))
        j = rng.integers(0, len(ys), len(ys))
        bx = rng.binomial(xn[i], xs[i]) / xn[i]
        by = rng.binomial(yn[j], ys[j]) / yn[j]
        boot[r] = _p_improvement(bx, by)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"p": _p_improvement(xs, ys), "low": float(low), "high": float(high), "reps": reps}


def _p_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """The mean over pairs of runs of [x > y] + 0.5 [x == y]."""
    diff = x[:, None] - y[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())
