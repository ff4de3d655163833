"""Weights & Biases: a run named after the run directory, its files under ``out_dir/wandb``.
``WANDB_MODE=offline`` works without a network (``wandb sync`` uploads it later)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmopsd.tracking.base import TRACKERS, Tracker

ID_FILE = "wandb_id.json"  # the run's id, so a resumed run continues the same wandb run


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """Scalars at the run's steps, tables as ``wandb.Table``, the curve as ``wandb.Image``."""

    needs, extra = "wandb", "wandb"

    def __init__(
        self, out_dir: Path, name: str, config: dict[str, Any], resume_step: int | None
    ) -> None:
        super().__init__(out_dir, name, config, resume_step)
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project="mmopsd", name=name, dir=str(out_dir), config=config,
            id=_run_id(out_dir, resume_step), resume="allow",
        )  # fmt: skip

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def table(self, step: int, name: str, columns: list[str], rows: list[list[str]]) -> None:
        self.run.log({name: self.wandb.Table(columns=columns, data=rows)}, step=step)

    def text(self, step: int, name: str, text: str) -> None:
        self.run.log({name: self.wandb.Html(f"<pre>{_escape(text)}</pre>")}, step=step)

    def image(self, step: int, name: str, path: Path) -> None:
        self.run.log({name: self.wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.run.finish()


def _run_id(out_dir: Path, resume_step: int | None) -> str:
    """The id kept in the run directory (a new one for a fresh run)."""
    file = out_dir / ID_FILE
    if resume_step is not None and file.is_file():
        return json.loads(file.read_text())["id"]
    run_id = uuid.uuid4().hex[:8]
    out_dir.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"id": run_id}))
    return run_id


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
