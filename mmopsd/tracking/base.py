"""What every tracker takes, how a metrics record becomes scalars and tables, and the set of
trackers a run writes to."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmopsd.errors import ConfigError
from mmopsd.registry import Registry


class Tracker:
    """One tracking backend of a run. Subclasses set :attr:`needs` (the module it imports)
    and :attr:`extra` (the pip extra that installs it) and implement the four writes.

    Args:
        out_dir: the run directory (backends that keep local files put them under it).
        name: the run's name (its directory's name).
        config: the run's config as plain data.
        resume_step: the step a resumed run continues after (None: a fresh run); logs past
            it are dropped where the backend can.
    """

    needs: str = ""
    extra: str = ""

    def __init__(
        self, out_dir: Path, name: str, config: dict[str, Any], resume_step: int | None
    ) -> None:
        self.out_dir, self.name, self.config, self.resume_step = out_dir, name, config, resume_step

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Log ``values`` (name -> number) at ``step``."""
        raise NotImplementedError

    def table(self, step: int, name: str, columns: list[str], rows: list[list[str]]) -> None:
        """Log a table (its Markdown form is :func:`markdown_table`)."""
        raise NotImplementedError

    def text(self, step: int, name: str, text: str) -> None:
        """Log Markdown text (sample episodes)."""
        raise NotImplementedError

    def image(self, step: int, name: str, path: Path) -> None:
        """Log the PNG at ``path`` (the learning curve)."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and finish."""


TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def check_report_to(names: Sequence[str]) -> None:
    """Each name is a registered tracker whose library is installed; else a one-line error
    naming the fix."""
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(
                f"run.report_to: unknown tracker {name!r}; use one of {', '.join(TRACKERS)}"
            )
        cls = TRACKERS.get(name)
        if importlib.util.find_spec(cls.needs) is None:
            raise ConfigError(
                f"run.report_to: {name} needs the {cls.needs} package: "
                f"pip install 'mmopsd[{cls.extra}]'"
            )


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics record as ``a/b/c`` names (booleans as 0/1; ``step``,
    ``kind``, text and None left out)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in ("step", "kind"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}/"))
        elif isinstance(value, bool | int | float):
            out[name] = float(value)
    return out


class Trackers:
    """The trackers of a run (none when ``report_to`` is empty): each record of the metrics
    log goes to all of them."""

    SAMPLE = 2  # episodes of each evaluation shown as text

    def __init__(self, trackers: Sequence[Tracker] = (), out_dir: Path | None = None) -> None:
        self.trackers = list(trackers)
        self.out_dir = out_dir

    def record(self, record: Mapping[str, Any]) -> None:
        """Log a metrics record: its numbers under its kind (``train/loss``,
        ``eval/student/success``), an evaluation's tables and sample episodes."""
        if not self.trackers:
            return
        step, kind = int(record.get("step", 0)), str(record.get("kind", "train"))
        values = {f"{kind}/{k}": v for k, v in flatten(record).items()}
        for t in self.trackers:
            t.scalars(step, values)
        if kind == "eval":
            self._tables(step, record)

    def _tables(self, step: int, record: Mapping[str, Any]) -> None:
        from mmopsd.evaluation.core import EvalResult

        for who in ("student", "teacher"):
            if isinstance(record.get(who), Mapping):
                result = EvalResult(**record[who])
                columns, rows = table_rows(result.table(who))
                for t in self.trackers:
                    t.table(step, f"eval/{who}_table", columns, rows)
        if record.get("episodes") and self.out_dir is not None:
            from mmopsd.evaluation.episodes import episode_markdown, read_episodes

            sample = read_episodes(self.out_dir / str(record["episodes"]))[: self.SAMPLE]
            text = "\n\n".join(episode_markdown(e) for e in sample)
            for t in self.trackers:
                t.text(step, "eval/episodes", text)

    def image(self, step: int, name: str, path: Path) -> None:
        """Log an image file (the learning curve) to every tracker."""
        if path.is_file():
            for t in self.trackers:
                t.image(step, name, path)

    def close(self) -> None:
        """Finish every tracker."""
        for t in self.trackers:
            t.close()
        self.trackers = []


def open_trackers(
    names: Sequence[str],
    out_dir: Path,
    config: dict[str, Any],
    resume_step: int | None = None,
) -> Trackers:
    """The run's trackers, started."""
    check_report_to(names)
    made = [TRACKERS.get(n)(out_dir, out_dir.name, config, resume_step) for n in names]
    return Trackers(made, out_dir)


def table_rows(markdown: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first Markdown table in ``markdown``."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    body = [r for r in cells[1:] if not all(set(c) <= set("-: ") for c in r)]
    return (cells[0] if cells else []), body
