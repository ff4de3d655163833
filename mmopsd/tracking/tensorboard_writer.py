"""TensorBoard event files under ``out_dir/tensorboard`` (torch's ``SummaryWriter``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmopsd.tracking.base import TRACKERS, Tracker


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """Scalars, tables as Markdown text, the curve as an image; a resumed run purges the
    events after the step it resumes from."""

    needs, extra = "tensorboard", "tensorboard"

    def __init__(
        self, out_dir: Path, name: str, config: dict[str, Any], resume_step: int | None
    ) -> None:
        super().__init__(out_dir, name, config, resume_step)
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def table(self, step: int, name: str, columns: list[str], rows: list[list[str]]) -> None:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        self.writer.add_text(name, "\n".join(lines), step)

    def text(self, step: int, name: str, text: str) -> None:
        self.writer.add_text(name, text, step)

    def image(self, step: int, name: str, path: Path) -> None:
        import numpy as np
        from PIL import Image

        pixels = np.asarray(Image.open(path).convert("RGB"))
        self.writer.add_image(name, pixels, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
