"""Read back what a tracker logged, to check it against ``metrics.jsonl`` (tests, and users
who want the numbers of a TensorBoard log without TensorBoard's UI)."""

from __future__ import annotations

from pathlib import Path

from mmopsd.tracking.base import flatten


def tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar under ``folder``'s event files: name -> step -> value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def expected_scalars(records: list[dict]) -> dict[str, dict[int, float]]:
    """What the trackers log for ``records`` (a run's ``metrics.jsonl``): name -> step ->
    value; a later record of a step replaces an earlier one."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        kind, step = str(record.get("kind", "train")), int(record.get("step", 0))
        for name, value in flatten(record).items():
            out.setdefault(f"{kind}/{name}", {})[step] = value
    return out
