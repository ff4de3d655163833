"""A training method: who plays each episode, which turns are trained by which terms, and
how many optimizer passes a batch gets. The training step asks its method; it never tests a
method's name.

A method is one class in one file, registered under its name::

    @METHODS.register("my_method")
    class MyMethod(Method):
        fixed = {"actor": ("student",)}      # method fields it fixes (first: the default)

        def terms(self): ...                 # its loss terms (mmopsd.methods.terms)
        def plan(self, batch): ...           # optional: which turns train, how much

Every other hook has a documented default (:class:`Method`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mmopsd.config import MethodConfig, TrainConfig
from mmopsd.errors import ConfigError
from mmopsd.methods.terms import Term
from mmopsd.registry import Registry

if TYPE_CHECKING:
    from mmopsd.methods.turn_plan import TurnSample
    from mmopsd.types import Trajectory

Player = Literal["student", "teacher", "expert"]


@dataclass(frozen=True)
class Batch:
    """What a method plans a step's training from.

    Attributes:
        trajectories: the step's episodes, in batch order.
        step: the 1-based training step.
        divergences: per ``(trajectory, turn)``, the mean ``|log S - log T|`` of the turn's
            sampled tokens, where the method asked for them (:attr:`Method.reads_divergences`).
        policy: the student (to encode labels, e.g. an expert's action).
    """

    trajectories: Sequence[Trajectory]
    step: int
    divergences: Mapping[tuple[int, int], float] | None = None
    policy: Any = None


class Method:
    """The base of every training method.

    Subclasses set :attr:`fixed` and implement :meth:`terms` (the registry sets
    :attr:`name`); the other hooks have defaults.

    Attributes:
        fixed: the fields of the ``method`` section the method fixes (a dotted key names a
            field of another section: ``rollout.engine``), each with its allowed values (the
            first is set where the config leaves the field at its default); a config setting
            another value is an error naming both (:func:`resolve`).
        settings: the method section of the run's config.
    """

    name: ClassVar[str] = ""
    fixed: ClassVar[Mapping[str, tuple[Any, ...]]] = {}

    def __init__(self, settings: MethodConfig) -> None:
        self.settings = settings
        self.check()

    def check(self) -> None:
        """Raise a :class:`~mmopsd.errors.ConfigError` for settings this method cannot
        train with (called on construction, before anything loads)."""

    def players(self, episodes: int) -> list[Player]:
        """Who plays each of a process's ``episodes`` of a step, in order (whole groups of
        ``group_size``). Default: the student plays all (on-policy)."""
        return ["student"] * episodes

    @property
    def passes(self) -> int:
        """Optimizer passes over each batch (default 1)."""
        return 1

    @property
    def reads_divergences(self) -> bool:
        """Whether :meth:`plan` needs every turn's teacher divergence (which scores the
        teacher on every turn first). Default: with the ``sod`` turn weighting, which weighs
        turns by their divergence."""
        return self.settings.turn_weighting == "sod"

    def plan(self, batch: Batch) -> list[TurnSample]:
        """The turns to train and each one's coefficient for every term. Default: every turn
        with a response, weighted and routed as the settings say
        (:func:`~mmopsd.methods.planning.planned`)."""
        from mmopsd.methods.planning import planned  # planning builds on this module's types

        return planned(batch, self.settings)

    def terms(self) -> tuple[Term, ...]:
        """The loss terms, in the order they are added."""
        raise NotImplementedError

    def reads_teacher(self, sample: TurnSample) -> bool:
        """Whether ``sample`` needs the teacher's privileged view (a term reading the
        teacher trains it)."""
        return any(t.reads_teacher and t.coefficient(sample) for t in self.terms())

    def describe(self) -> dict[str, Any]:
        """What a step's metrics record says of the method."""
        return {"method": self.name, "actor": self.settings.actor}


METHODS: Registry[type[Method]] = Registry("method")


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    """Register a :class:`Method` subclass under ``name`` (and set its :attr:`~Method.name`)."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)

    return deco


def resolve(config: TrainConfig) -> TrainConfig:
    """``config`` with its method's fixed fields filled in: a field left at its default
    takes the method's value (the first it allows); a field set to a value the method does
    not allow is an error naming both. Idempotent; the run's ``config.yaml`` records the
    result."""
    name = config.method.name
    if name not in METHODS:
        raise ConfigError(f"method.name must be one of {', '.join(METHODS.names())}, got {name!r}")
    changes: dict[str, dict[str, Any]] = {}
    for key, allowed in METHODS.get(name).fixed.items():
        where, field_name = key.split(".") if "." in key else ("method", key)
        section = getattr(config, where)
        value = getattr(section, field_name)
        if value in allowed:
            continue
        if value != _default(section, field_name):
            shown = " or ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"method {name} sets {where}.{field_name}: {shown}, but the config sets "
                f"{value!r}; remove {where}.{field_name} from the config or pick another method"
            )
        changes.setdefault(where, {})[field_name] = allowed[0]
    sections = {w: dataclasses.replace(getattr(config, w), **c) for w, c in changes.items()}
    return dataclasses.replace(config, **sections) if sections else config


def _default(section: Any, name: str) -> Any:
    f = next(f for f in dataclasses.fields(section) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def build_method(config: TrainConfig) -> Method:
    """The method of ``config``, built from its resolved method section (:func:`resolve`)
    and checked (:meth:`Method.check`)."""
    return METHODS.get(config.method.name)(resolve(config).method)


def teacher_groups(share: float, episodes: int, group_size: int) -> int:
    """How many of ``episodes`` (the first ones, whole groups) a teacher playing ``share``
    of them plays."""
    groups = episodes // group_size
    return round(share * groups) * group_size
