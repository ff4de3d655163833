"""A training method: who plays each episode, which turns are trained by which terms, and
how many optimizer passes a batch gets. The training step asks its method; it never tests a
method's name.

A method is one class in one file, registered under its name::

    @METHODS.register("my_method")
    class MyMethod(Method):
        fixed = {"actor": ("student",)}      # the config fields it fixes (first: the default)

        def terms(self): ...                 # its loss terms (mmopsd.methods.terms)
        def plan(self, batch): ...           # optional: which turns train, how much

Every other hook has a documented default (:class:`Method`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mmopsd.errors import ConfigError
from mmopsd.methods.settings import MethodSettings
from mmopsd.methods.terms import Term
from mmopsd.registry import Registry

if TYPE_CHECKING:
    from mmopsd.methods.turn_plan import TurnSample
    from mmopsd.types import Trajectory

Player = Literal["student", "teacher"]


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
        fixed: config fields the method fixes, each with its allowed values (the first is
            set when the config is silent); a config setting another value is an error
            naming both.
        settings: the config fields the method reads.
    """

    name: ClassVar[str] = ""
    fixed: ClassVar[Mapping[str, tuple[Any, ...]]] = {}

    def __init__(self, settings: MethodSettings) -> None:
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


def expand(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its ``method``'s fixed fields filled in (unchanged without a method)."""
    name = data.get("method")
    if name is None:
        return data
    if name not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS.names())}, got {name!r}")
    out = dict(data)
    for key, allowed in METHODS.get(name).fixed.items():
        if key not in out:
            out[key] = allowed[0]
        elif out[key] not in allowed:
            shown = " or ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"method {name} sets {key}: {shown}, but the config sets {key}: {out[key]!r}; "
                f"remove {key} from the config or pick another method"
            )
    return out


def check(config: Any) -> None:
    """Raise a :class:`ConfigError` if ``config``'s fields contradict its method (a config
    built field by field in Python rather than through :func:`expand`)."""
    if config.method not in METHODS:
        raise ConfigError(
            f"method must be one of {', '.join(METHODS.names())}, got {config.method!r}"
        )
    for key, allowed in METHODS.get(config.method).fixed.items():
        if getattr(config, key) not in allowed:
            raise ConfigError(
                f"method {config.method} needs {key} in {list(allowed)}, got "
                f"{getattr(config, key)!r}; build the config with mmopsd.config.from_dict "
                "(it fills the method's fields) or set them"
            )


def build_method(config: Any) -> Method:
    """The method of ``config`` (a :class:`~mmopsd.config.TrainConfig`), built from its
    fields."""
    check(config)
    return METHODS.get(config.method)(MethodSettings.from_config(config))


def teacher_groups(share: float, episodes: int, group_size: int) -> int:
    """How many of ``episodes`` (the first ones, whole groups) a teacher playing ``share``
    of them plays."""
    groups = episodes // group_size
    return round(share * groups) * group_size
