"""The static HTML page of an evaluation's episodes: one section per episode, one block per
turn (the observation and its images, the response, the parsed action, reward and feedback,
and what the teacher's view adds). No script, no network: it opens from disk."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
section.episode { border: 1px solid #ccc; border-radius: 6px; margin: 1.5em 0; padding: 0 1em; }
section.success h2 { color: #17692a; } section.failure h2 { color: #a3261b; }
div.turn { border-top: 1px solid #eee; padding: .6em 0; display: flex; gap: 1em; }
div.turn img { border: 1px solid #999; image-rendering: pixelated; width: 320px; }
pre { white-space: pre-wrap; margin: .2em 0; background: #f6f6f6; padding: .4em; }
.teacher { background: #fff6d6; } .invalid { color: #a3261b; font-weight: bold; }
.label { color: #666; font-size: 12px; text-transform: uppercase; }
"""


def render_page(
    title: str,
    episodes: Sequence[dict[str, Any]],
    frames: str,
    summary: dict[str, Any] | None = None,
) -> str:
    """The page of ``episodes`` (records of :class:`~mmopsd.evaluation.episodes.
    EpisodeRecorder`); ``frames`` is the folder their images are in."""
    wins = sum(bool(e["success"]) for e in episodes)
    head = f"{wins} of {len(episodes)} episodes won"
    if summary:
        head += "; " + ", ".join(f"{k} {_number(v)}" for k, v in summary.items())
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='summary'>{escape(head)}. Images are in <code>{escape(frames)}/</code>.</p>",
        *(_episode(e) for e in episodes),
    ]
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _episode(e: dict[str, Any]) -> str:
    outcome = "success" if e["success"] else "failure"
    heading = f"Episode {e['episode']}: {outcome}"
    if e.get("task"):
        heading += f" ({e['task']})"
    error = f"<p class='invalid'>{escape(str(e['error']))}</p>" if e.get("error") else ""
    turns = "\n".join(_turn(e["episode"], t) for t in e["turns"])
    return (
        f"<section class='episode {outcome}' id='episode-{e['episode']}'>"
        f"<h2>{escape(heading)}</h2>{error}\n{turns}</section>"
    )


def _turn(episode: int, t: dict[str, Any]) -> str:
    images = "".join(
        f"<img src='{escape(src)}' alt='observation of turn {t['turn']}'>" for src in t["frames"]
    )
    action = escape(str(t["action"]))
    validity = "" if t["valid"] else " <span class='invalid'>invalid</span>"
    parts = [
        f"<div class='label'>turn {t['turn']}</div>",
        f"<pre class='observation'>{escape(t['observation'])}</pre>",
    ]
    if t.get("teacher_lines"):
        lines = escape("\n".join(t["teacher_lines"]))
        parts.append(
            f"<div class='label'>the teacher also reads</div><pre class='teacher'>{lines}</pre>"
        )
    elif t.get("privileged"):
        shown = escape(_privileged_text(t["privileged"]))
        parts.append(
            f"<div class='label'>privileged information</div><pre class='teacher'>{shown}</pre>"
        )
    parts += [
        f"<div class='label'>response</div><pre class='response'>{escape(t['response'])}</pre>",
        f"<div>action <code>{action}</code>{validity}, reward {t['reward']:g}"
        + (", episode over" if t["terminated"] or t["truncated"] else "") + "</div>",
    ]  # fmt: skip
    if t.get("feedback"):
        parts.append(f"<div class='feedback'>{escape(str(t['feedback']))}</div>")
    return (
        f"<div class='turn' id='episode-{episode}-turn-{t['turn']}'>"
        f"<div>{images}</div><div>{''.join(parts)}</div></div>"
    )


def _privileged_text(privileged: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in privileged.items() if isinstance(v, str | int | float))


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
