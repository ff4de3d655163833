"""Turn weights, the temporal curriculum and group advantages on hand-computed cases."""

from __future__ import annotations

import pytest

from mmopsd.methods.advantages import group_advantages
from mmopsd.methods.curriculum import TemporalCurriculum
from mmopsd.methods.turn_weighting import TURN_WEIGHTINGS, discount, sod, uniform


def test_uniform_and_discount():
    assert uniform(3) == [1.0, 1.0, 1.0]
    assert discount(4, gamma=0.5) == [1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match="gamma"):
        discount(2, gamma=0.0)


def test_sod_by_hand():
    # d = [0.5, 0.25, 1.0], eps = 0: w1 = 1, w2 = min(0.5/0.25, 1.5) = 1.5 (capped),
    # w3 = min(0.5/0.25 * 0.25/1.0, 1.5) = 0.5
    assert sod(3, divergences=[0.5, 0.25, 1.0], eps=0.0, delta=0.5) == pytest.approx(
        [1.0, 1.5, 0.5]
    )
    assert sod(2, divergences=[0.2, 0.3], eps=0.1, delta=1.0) == pytest.approx([1.0, 0.75])
    with pytest.raises(ValueError, match="one divergence per turn"):
        sod(2, divergences=[0.1])
    assert TURN_WEIGHTINGS.get("sod") is sod


def test_temporal_curriculum():
    cur = TemporalCurriculum(every=10)
    assert [cur.turns_at(s) for s in (0, 9, 10, 25)] == [1, 1, 2, 3]
    assert cur.select(["a", "b", "c"], step=10) == ["a", "b"]
    assert cur.select(["a"], step=100) == ["a"]
    with pytest.raises(ValueError):
        TemporalCurriculum(every=0)


def test_grpo_and_rloo_by_hand():
    rewards = [1.0, 0.0, 0.0, 1.0, 5.0]
    groups = ["a", "a", "b", "b", "c"]
    grpo = group_advantages(rewards, groups, eps=0.0)
    assert grpo == pytest.approx([1.0, -1.0, -1.0, 1.0, 0.0])  # mean 0.5, std 0.5; lone group 0
    rloo = group_advantages([1.0, 0.0, 0.5], ["g", "g", "g"], kind="rloo")
    assert rloo == pytest.approx([1.0 - 0.25, 0.0 - 0.75, 0.5 - 0.5])
    assert group_advantages([1.0, 1.0], ["g", "g"]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="grpo"):
        group_advantages([1.0], ["g"], kind="ppo")
