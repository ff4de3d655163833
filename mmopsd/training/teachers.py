"""Teacher update rules: ``frozen`` (default), ``live``, ``ema`` and ``sync``.

The teacher is the same model family and tokenizer as the student; it only ever runs without
gradients. A live teacher can collapse (the student learns to make the privileged context
irrelevant, and teacher-with-PI success drops), so ``frozen`` is the default.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import torch

from mmopsd.checks import call_checked
from mmopsd.policies.base import Policy, Scored
from mmopsd.registry import Registry
from mmopsd.types import Encoded

TEACHERS: Registry[type] = Registry("teacher")


class Teacher:
    """Scores teacher contexts without gradients; :meth:`update` runs after every step.

    Args:
        student: the student policy.
    """

    static = False
    """True when the teacher never changes during training (its evaluation can be reused)."""

    def __init__(self, student: Policy) -> None:
        self.student = student
        self.policy = student

    @contextlib.contextmanager
    def active(self) -> Iterator[Policy]:
        """Context in which ``self.policy`` is the teacher model."""
        yield self.policy

    @torch.no_grad()
    def score(self, prompts: Sequence[Encoded], responses: Sequence[Sequence[int]]) -> Scored:
        """Teacher logits of ``responses`` after the teacher ``prompts``."""
        with self.active() as policy:
            return policy.score(prompts, responses)

    def update(self, step: int) -> None:
        """Called after optimizer step ``step`` (1-based)."""

    def rebind(self) -> None:
        """Called after the student's parameters were replaced (FSDP2 sharding)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors needed to resume this teacher exactly (empty when derived)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""


def _is_peft(model: torch.nn.Module) -> bool:
    return callable(getattr(model, "disable_adapter", None))


def _copy_policy(student: Policy) -> Policy:
    twin = copy.copy(student)
    twin.model = copy.deepcopy(student.model).eval().requires_grad_(False)
    return twin


@TEACHERS.register("frozen")
class FrozenTeacher(Teacher):
    """The initial weights: with LoRA the base model with adapters disabled (no copy),
    otherwise a frozen copy made at construction."""

    static = True

    def __init__(self, student: Policy) -> None:
        super().__init__(student)
        self.uses_adapters = _is_peft(student.model)
        if not self.uses_adapters:
            self.policy = _copy_policy(student)

    @contextlib.contextmanager
    def active(self) -> Iterator[Policy]:
        if self.uses_adapters:
            with self.student.model.disable_adapter():
                yield self.student
        else:
            yield self.policy


@TEACHERS.register("live")
class LiveTeacher(Teacher):
    """The current student weights (under no_grad). Prone to collapse; see module doc."""


class _CopyTeacher(Teacher):
    """A separate copy whose trainable tensors follow the student by some rule."""

    def __init__(self, student: Policy) -> None:
        super().__init__(student)
        self.policy = _copy_policy(student)
        own = dict(self.policy.model.named_parameters())
        trainable = [(n, p) for n, p in student.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in trainable]
        self.pairs = [(own[n], p) for n, p in trainable]

    def rebind(self) -> None:
        """Follow the student's current parameters (FSDP2 replaced them when sharding)."""
        own = dict(self.policy.model.named_parameters())
        current = dict(self.student.model.named_parameters())
        self.pairs = [(own[n], current[n]) for n in self.names]

    def _student_tensors(self) -> list[torch.Tensor]:
        """The student's trainable tensors, whole (a collective for sharded ones)."""
        return [s.full_tensor() if hasattr(s, "full_tensor") else s.detach() for _, s in self.pairs]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.detach().clone() for n, (t, _) in zip(self.names, self.pairs)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, (t, _) in zip(self.names, self.pairs):
                t.copy_(state[n])


@TEACHERS.register("ema")
class EMATeacher(_CopyTeacher):
    """``teacher <- (1 - rate) * teacher + rate * student`` after every step.

    Args:
        rate: the EMA rate r (0.01-0.05 is typical).
    """

    def __init__(self, student: Policy, rate: float = 0.05) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"ema teacher rate must lie in (0, 1], got {rate}")
        super().__init__(student)
        self.rate = rate

    @torch.no_grad()
    def update(self, step: int) -> None:
        for (t, _), s in zip(self.pairs, self._student_tensors()):
            t.lerp_(s.to(t.dtype), self.rate)


@TEACHERS.register("sync")
class SyncTeacher(_CopyTeacher):
    """A hard copy of the student every ``every`` steps.

    Args:
        every: steps between copies.
    """

    def __init__(self, student: Policy, every: int = 10) -> None:
        if every < 1:
            raise ValueError(f"sync teacher needs every >= 1, got {every}")
        super().__init__(student)
        self.every = every

    @torch.no_grad()
    def update(self, step: int) -> None:
        if step % self.every == 0:
            for (t, _), s in zip(self.pairs, self._student_tensors()):
                t.copy_(s)


def build_teacher(name: str, student: Policy, **options: float) -> Teacher:
    """The teacher registered as ``name`` (``frozen``, ``live``, ``ema``, ``sync``)."""
    return call_checked(
        "teacher.update_kwargs", f"teacher {name!r}", TEACHERS.get(name), student, **options
    )
