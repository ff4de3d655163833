"""Teacher update rules on a tiny model."""

from __future__ import annotations

import pytest
import torch

from mmopsd.errors import UnknownNameError
from mmopsd.testing import tiny_text_policy
from mmopsd.training.teachers import build_teacher
from mmopsd.types import user


def _bump(policy, value: float) -> None:
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(value)


def _first(policy) -> torch.Tensor:
    return next(policy.model.parameters()).detach().clone()


def test_frozen_teacher_keeps_initial_weights():
    student = tiny_text_policy()
    teacher = build_teacher("frozen", student)
    start = _first(student)
    _bump(student, 1.0)
    teacher.update(1)
    torch.testing.assert_close(_first(teacher.policy), start)


def test_live_teacher_is_the_student():
    student = tiny_text_policy()
    teacher = build_teacher("live", student)
    assert teacher.policy is student


def test_ema_teacher_moves_by_rate():
    student = tiny_text_policy()
    teacher = build_teacher("ema", student, rate=0.25)
    start = _first(student)
    _bump(student, 1.0)
    teacher.update(1)
    # Elementwise (no reduction, so no summation order): float32's default tolerance holds.
    torch.testing.assert_close(_first(teacher.policy), start + 0.25)


def test_sync_teacher_copies_every_n_steps():
    student = tiny_text_policy()
    teacher = build_teacher("sync", student, every=2)
    start = _first(student)
    _bump(student, 1.0)
    teacher.update(1)
    torch.testing.assert_close(_first(teacher.policy), start)
    teacher.update(2)
    torch.testing.assert_close(_first(teacher.policy), start + 1.0)


def test_teacher_scores_without_gradients():
    student = tiny_text_policy()
    teacher = build_teacher("live", student)
    prompt = student.encode([user("Hi")])
    out = teacher.score([prompt], [[40, 41]])
    assert not out.logits.requires_grad


def test_unknown_teacher_and_bad_options():
    student = tiny_text_policy()
    with pytest.raises(UnknownNameError, match="unknown teacher 'stale'"):
        build_teacher("stale", student)
    with pytest.raises(ValueError, match="rate"):
        build_teacher("ema", student, rate=0.0)
