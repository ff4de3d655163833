"""trackio: a local dashboard (``trackio show --project mmopsd``) kept in its own database
(``TRACKIO_DIR``), no account and no network needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmopsd.tracking.base import TRACKERS, Tracker


@TRACKERS.register("trackio")
class TrackioTracker(Tracker):
    """Scalars at the run's steps, tables as ``trackio.Table``, the curve as an image."""

    needs, extra = "trackio", "trackio"

    def __init__(
        self, out_dir: Path, name: str, config: dict[str, Any], resume_step: int | None
    ) -> None:
        super().__init__(out_dir, name, config, resume_step)
        import trackio

        self.trackio = trackio
        self.run = trackio.init(
            project="mmopsd", name=name, config=config, embed=False, auto_log_cpu=False,
            auto_log_gpu=False, resume="never" if resume_step is None else "allow",
        )  # fmt: skip

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.trackio.log(dict(values), step=step)

    def table(self, step: int, name: str, columns: list[str], rows: list[list[str]]) -> None:
        self.trackio.log({name: self.trackio.Table(columns=columns, data=rows)}, step=step)

    def text(self, step: int, name: str, text: str) -> None:
        self.trackio.log({name: self.trackio.Markdown(text)}, step=step)

    def image(self, step: int, name: str, path: Path) -> None:
        self.trackio.log({name: self.trackio.Image(str(path))}, step=step)

    def close(self) -> None:
        self.trackio.finish()
