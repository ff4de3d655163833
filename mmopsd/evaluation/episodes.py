"""Every episode of an evaluation, kept to be looked at: ``FILE.jsonl`` (one episode a line:
per turn the observation, the model's response and parsed action, validity, reward, the
environment's feedback, the privileged information and the lines the teacher's view adds to
it), the observations' images as PNG files in ``FILE_frames/``, and a static HTML page,
``FILE.html``, that shows them turn by turn (:mod:`mmopsd.evaluation.episode_page`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from mmopsd.errors import writable_file
from mmopsd.evaluation.episode_page import render_page
from mmopsd.privileged.base import Provider
from mmopsd.types import ImagePart, Message, TextPart, Trajectory, Turn, jsonable


class EpisodeRecorder:
    """Collects an evaluation's finished episodes (:meth:`add`, an ``on_episode`` callback)
    and writes them (:meth:`write`).

    Args:
        path: the episodes file (``.jsonl``); the page and the frames go beside it.
        title: the page's heading (the model and the environment).
        teacher_view: the provider of the teacher's view: each turn records the lines it
            adds to the student's context (None: only the raw privileged information).
    """

    def __init__(self, path: Path, title: str, teacher_view: Provider | None = None) -> None:
        self.path = Path(path).with_suffix(".jsonl")
        self.title = title
        self.teacher_view = teacher_view
        self.episodes: list[tuple[int, Trajectory]] = []

    @property
    def page(self) -> Path:
        """The HTML page."""
        return self.path.with_suffix(".html")

    @property
    def frames(self) -> Path:
        """The folder of the observations' images."""
        return self.path.with_name(self.path.stem + "_frames")

    def add(self, index: int, trajectory: Trajectory) -> None:
        """Keep a finished episode (``index`` orders the file)."""
        self.episodes.append((index, trajectory))

    def write(self, summary: dict[str, Any] | None = None) -> Path:
        """Write the episodes, their frames and the page (replacing an earlier one); returns
        the page. ``summary`` (an evaluation's numbers) heads the page."""
        check_output(self.path)
        shutil.rmtree(self.frames, ignore_errors=True)
        records = [
            self._record(n, traj) for n, (_, traj) in enumerate(sorted(self.episodes, key=_first))
        ]
        _atomic(self.path, "".join(json.dumps(r) + "\n" for r in records))
        _atomic(self.page, render_page(self.title, records, self.frames.name, summary))
        return self.page

    def _record(self, n: int, traj: Trajectory) -> dict[str, Any]:
        return {
            "episode": n,
            "trajectory_id": traj.trajectory_id,
            "seed_group": traj.group_id,
            "task": traj.task,
            "success": traj.success,
            "error": traj.error,
            "turns": [self._turn(n, k, t) for k, t in enumerate(traj.turns)],
        }

    def _turn(self, n: int, k: int, turn: Turn) -> dict[str, Any]:
        seen = turn.messages[-1] if turn.messages else Message("user", "")
        outcome = turn.info.get("outcome", {})
        return {
            "turn": k,
            "observation": seen.text,
            "frames": self._frames(n, k, turn.frames or _images(seen)),
            "response": turn.assistant_prefix + turn.response_text,
            "action": turn.action,
            "valid": turn.valid,
            "reward": turn.reward,
            "terminated": turn.terminated,
            "truncated": turn.truncated,
            "feedback": outcome.get("feedback") or outcome.get("error"),
            "privileged": jsonable(turn.privileged),
            "teacher_lines": self._teacher_lines(turn),
        }

    def _frames(self, n: int, k: int, images: list[Image.Image]) -> list[str]:
        """The images saved as PNG files; their paths relative to the page."""
        names = []
        for i, image in enumerate(images):
            self.frames.mkdir(parents=True, exist_ok=True)
            name = f"episode-{n}-turn-{k}-{i}.png"
            image.save(self.frames / name)
            names.append(f"{self.frames.name}/{name}")
        return names

    def _teacher_lines(self, turn: Turn) -> list[str] | None:
        """The lines the teacher's view adds to the student's context (None without a view,
        or where this turn lacks what the view needs)."""
        if self.teacher_view is None:
            return None
        try:
            ctx = self.teacher_view(
                turn.messages, turn.privileged, assistant_prefix=turn.assistant_prefix
            )
        except Exception:  # a missing privileged key: the page shows the raw information
            return None
        student = {ln for m in turn.messages for ln in _lines(m)}
        return [ln for m in ctx.messages for ln in _lines(m) if ln not in student]


def check_output(path: Path) -> None:
    """The episodes file's folder exists or can be made; a folder in the file's place is an
    error (checked before the evaluation plays, so nothing is lost)."""
    path = Path(path)
    for target in (path.with_suffix(".jsonl"), path.with_suffix(".html")):
        writable_file(target, "name a file for the episodes")


def episode_markdown(record: dict[str, Any], max_turns: int = 8) -> str:
    """An episode record as Markdown (the sample episodes experiment trackers show)."""
    head = f"**episode {record['episode']}** ({'success' if record['success'] else 'failure'})"
    lines = [head, ""]
    for t in record["turns"][:max_turns]:
        invalid = "" if t["valid"] else " (invalid)"
        said = f"`{t['response'].strip()}` -> action `{t['action']}`{invalid}"
        lines.append(f"- turn {t['turn']}: {said}, reward {t['reward']:g}")
        if t.get("teacher_lines"):
            lines.append(f"  - teacher also read: {' / '.join(t['teacher_lines'])}")
    return "\n".join(lines)


def read_episodes(path: Path) -> list[dict[str, Any]]:
    """The records of an episodes file."""
    text = Path(path).with_suffix(".jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def _images(message: Message) -> list[Image.Image]:
    parts = message.content if isinstance(message.content, list) else []
    return [p.image for p in parts if isinstance(p, ImagePart)]


def _lines(message: Message) -> list[str]:
    content = message.content
    texts = [content] if isinstance(content, str) else [
        p.text for p in content if isinstance(p, TextPart)
    ]  # fmt: skip
    return [ln.strip() for t in texts for ln in t.splitlines() if ln.strip()]


def _first(pair: tuple[int, Trajectory]) -> int:
    return pair[0]


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


__all__: Sequence[str] = [
    "EpisodeRecorder", "check_output", "episode_markdown", "read_episodes",
]  # fmt: skip
