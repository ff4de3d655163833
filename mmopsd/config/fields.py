"""The fields of a config section: each carries its documentation and its checks
(:func:`option`), so the configuration reference and the checks come from one place."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

from mmopsd.errors import ConfigError

NOTHING: Any = dataclasses.MISSING


def option(
    default: Any = NOTHING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    choices: tuple[Any, ...] = (),
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
) -> Any:
    """A documented config field: its default (or ``factory``), its one-paragraph
    documentation, and the checks every value passes (``choices``; ``at_least``/``above``/
    ``at_most`` bounds; ``None`` always passes the bounds)."""
    meta = {"doc": doc, "choices": choices, "at_least": at_least, "above": above}
    meta["at_most"] = at_most
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Section:
    """A config section: a dataclass of :func:`option` fields, checked on construction.

    Subclasses name their place in the config (:attr:`key`) and may add checks of several
    fields in :meth:`check`."""

    key: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check_value(f"{self.key}.{f.name}", getattr(self, f.name), f.metadata)
        self.check()

    def check(self) -> None:
        """Checks of several fields together (the single fields are checked already)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def check_value(name: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    """Raise a :class:`ConfigError` naming ``name`` if ``value`` breaks its field's checks."""
    choices = meta.get("choices") or ()
    if choices and value not in choices:
        shown = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name} must be one of {shown}, got {value!r}")
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    low, high = meta.get("at_least"), meta.get("at_most")
    low = meta.get("above") if low is None else low
    if low is not None and high is not None:
        opening = "[" if meta.get("at_least") is not None else "("
        inside = value >= low if opening == "[" else value > low
        if not (inside and value <= high):
            raise ConfigError(f"{name} must lie in {opening}{low:g}, {high:g}], got {value}")
        return
    if meta.get("at_least") is not None and value < meta["at_least"]:
        raise ConfigError(f"{name} must be >= {meta['at_least']:g}, got {value}")
    if meta.get("above") is not None and value <= meta["above"]:
        raise ConfigError(f"{name} must be > {meta['above']:g}, got {value}")
    if meta.get("at_most") is not None and value > meta["at_most"]:
        raise ConfigError(f"{name} must be <= {meta['at_most']:g}, got {value}")


def coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as a field of type ``hint`` wants it (an int or a string for a float: YAML
    reads ``2e-5`` as a string), or a :class:`ConfigError` naming ``name``."""
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    expected = origin or hint
    if origin in (types.UnionType, typing.Union):
        expected = tuple(typing.get_origin(a) or a for a in typing.get_args(hint))
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        want = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{name} must be {want}, got {value!r}")
    return value
