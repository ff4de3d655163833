"""``skill_summary``: skills distilled from past trajectories, shown only to the teacher.

Completed trajectories (successes and failures) are summarised into one short rule each by a
summariser backend (the training policy itself by default; anything with the same small
interface, ``summarise(prompts) -> texts``). The rules form a skill library, refreshed every
``every`` training steps; for each turn the ``k`` skills whose source tasks share the most
words with the current task are appended to the teacher's last user message. The library is
saved as ``skills.json`` and ``skills.md`` in the run directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from mmopsd.privileged.base import PROVIDERS, Episode, Provider, append_to_last_user

from mmopsd.errors import ConfigError
from mmopsd.types import Message, TeacherContext, Trajectory

PROMPT = (
    "Here is one attempt at a task.\nTask: {task}\nWhat was done: {actions}\nResult: {result}\n"
    "Write one short general rule, in one sentence, that would help with similar tasks."
)


class Summariser(Protocol):
    """Turns prompts into short texts."""

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        """One text per prompt."""
        ...


class PolicySummariser:
    """The training policy as summariser: greedy answers to the summary prompts.

    Args:
        policy: a :class:`mmopsd.policies.base.Policy`.
        max_new_tokens: length cap of a skill.
        prefix: forced start of each answer.
    """

    def __init__(self, policy: Any, max_new_tokens: int = 40, prefix: str = "Rule:") -> None:
        self.policy, self.max_new_tokens, self.prefix = policy, max_new_tokens, prefix

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        """Greedy completions after the prefix, cut at the first line break."""
        encoded = [
            self.policy.encode([Message("user", p)], assistant_prefix=self.prefix) for p in prompts
        ]
        outs = self.policy.generate(encoded, max_new_tokens=self.max_new_tokens, greedy=True)
        return [self.policy.decode(ids).strip().split("\n")[0].strip() for ids in outs]


class ServedSummariser:
    """A served model as summariser (any OpenAI-compatible chat endpoint).

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        api_key_env: the environment variable holding the API key (never printed).
        max_new_tokens: length cap of a skill.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        max_new_tokens: int = 40,
    ) -> None:
        from mmopsd.engines.served import OpenAIEngine

        self.engine = OpenAIEngine(base_url, model, api_key_env=api_key_env)
        self.engine.check()
        self.max_new_tokens = max_new_tokens

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        """The first line of each answer, without a leading ``Rule:``."""
        asked = [f"{p}\nAnswer with the rule alone." for p in prompts]
        outs = self.engine.chat(asked, max_new_tokens=self.max_new_tokens)
        lines = [(o.strip().split("\n") or [""])[0].strip() for o in outs]
        return [re.sub(r"^rule:\s*", "", line, flags=re.IGNORECASE) for line in lines]


@dataclass
class Skill:
    """One entry of the library."""

    text: str
    task: str
    success: bool
    step: int


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@PROVIDERS.register("skill_summary")
class SkillSummaryProvider(Provider):
    """Skills from past trajectories for the teacher.

    Args:
        k: skills shown per turn.
        every: refresh the library every ``every`` training steps.
        per_refresh: trajectories summarised per refresh (successes first, then failures).
        max_skills: library size (oldest dropped).
        template: how the skills are introduced; ``{skills}`` is replaced by a bullet list.
        max_new_tokens: length cap of a skill written by the policy.
        summariser: a served model writes the skills instead of the training policy:
            ``{base_url: ..., model: ..., api_key_env: ...}`` (``api_key_env`` optional).
    """

    name = "skill_summary"
    keys: tuple[str, ...] = ()
    static = False  # the library grows: the teacher's view changes during training

    def __init__(
        self,
        k: int = 3,
        every: int = 2,
        per_refresh: int = 4,
        max_skills: int = 64,
        template: str = "\n\nSkills learned from earlier attempts:\n{skills}",
        max_new_tokens: int = 40,
        summariser: Mapping[str, Any] | None = None,
    ) -> None:
        if k < 1 or every < 1 or per_refresh < 1:
            raise ValueError("skill_summary needs k, every and per_refresh >= 1")
        self.k, self.every, self.per_refresh, self.max_skills = k, every, per_refresh, max_skills
        self.template, self.max_new_tokens = template, max_new_tokens
        self.summariser: Summariser | None = None
        if summariser is not None:
            self.summariser = _served(summariser, max_new_tokens)
        self.skills: list[Skill] = []
        self.pending: list[Trajectory] = []
        self.out_dir: Path | None = None

    # ------------------------------------------------------------------ training hooks
    def bind(self, policy: Any, out_dir: str | Path | None = None) -> None:
        """Use ``policy`` as summariser (unless a backend was set) and save under ``out_dir``
        (a library already saved there, from a run being resumed, is loaded)."""
        if self.summariser is None:
            self.summariser = PolicySummariser(policy, self.max_new_tokens)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        saved = self.out_dir / "skills.json" if self.out_dir is not None else None
        if saved is not None and saved.is_file() and not self.skills:  # a resumed run
            self.skills = [Skill(**s) for s in json.loads(saved.read_text())]

    def reset(self) -> None:
        """Start an empty library (a fresh run): forget skills and remove saved files."""
        self.skills, self.pending = [], []
        if self.out_dir is not None:
            for name in ("skills.json", "skills.md"):
                (self.out_dir / name).unlink(missing_ok=True)

    def observe(self, trajectories: Sequence[Trajectory], step: int) -> None:
        """Collect finished trajectories; refresh the library on schedule."""
        self.pending += [t for t in trajectories if t.turns]
        if step % self.every == 0:
            self.refresh(step)

    def refresh(self, step: int) -> list[Skill]:
        """Summarise pending trajectories into new skills; returns them."""
        if not self.pending:
            return []
        if self.summariser is None:
            raise RuntimeError("skill_summary has no summariser: call bind(policy) or set one")
        chosen = sorted(self.pending, key=lambda t: not t.success)[: self.per_refresh]
        self.pending = []
        texts = self.summariser([_summary_prompt(t) for t in chosen])
        known = {s.text for s in self.skills}
        new = []
        for t, text in zip(chosen, texts):
            text = text.strip().strip('"').strip()
            if text and text not in known:  # one copy of each skill
                known.add(text)
                new.append(Skill(text, _task(t), t.success, step))
        self.skills = (self.skills + new)[-self.max_skills :]
        self.save()
        return new

    def save(self) -> None:
        """Write the library to ``skills.json`` and ``skills.md`` in the run directory."""
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "skills.json").write_text(
            json.dumps([asdict(s) for s in self.skills], indent=2)
        )
        lines = ["# Skill library", "", "| step | from | skill |", "|---|---|---|"]
        for s in self.skills:
            lines.append(f"| {s.step} | {'success' if s.success else 'failure'} | {s.text} |")
        (self.out_dir / "skills.md").write_text("\n".join(lines) + "\n")

    def retrieve(self, task: str) -> list[Skill]:
        """The ``k`` skills whose source tasks share the most words with ``task``."""
        words = _words(task)
        scored = [
            (len(words & _words(s.task)) / max(1, len(words | _words(s.task))), i, s)
            for i, s in enumerate(self.skills)
        ]
        return [s for *_, s in sorted(scored, key=lambda x: (-x[0], -x[1]))[: self.k]]

    # ------------------------------------------------------------------------ provider
    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages plus the most relevant skills (none before the first
        refresh)."""
        task = next((m.text for m in messages if m.role == "user"), "")
        chosen = self.retrieve(task)
        out = list(messages)
        if chosen:
            bullets = "\n".join(f"- {s.text}" for s in chosen)
            out = append_to_last_user(messages, self.template.format(skills=bullets))
        return TeacherContext(out, assistant_prefix, self.name)


def _served(options: Mapping[str, Any], max_new_tokens: int) -> ServedSummariser:
    """The served summariser of a ``summariser:`` mapping (checked, then connected)."""
    if not isinstance(options, Mapping) or not {"base_url", "model"} <= set(options):
        raise ConfigError(
            "skill_summary's summariser must be a mapping with base_url and model (and "
            f"optionally api_key_env), got {options!r}"
        )
    unknown = set(options) - {"base_url", "model", "api_key_env"}
    if unknown:
        raise ConfigError(
            f"skill_summary's summariser takes base_url, model and api_key_env, not "
            f"{', '.join(sorted(unknown))}"
        )
    return ServedSummariser(**options, max_new_tokens=max_new_tokens)


def _task(t: Trajectory) -> str:
    return next((m.text for m in t.turns[0].messages if m.role == "user"), "")


def _summary_prompt(t: Trajectory) -> str:
    actions = "; ".join(a for a in (turn.action for turn in t.turns) if a) or "nothing"
    last = t.turns[-1].info.get("outcome", {})
    result = ("success" if t.success else "failure") + (
        f" ({last['feedback']})" if last.get("feedback") else ""
    )
    return PROMPT.format(task=_task(t), actions=actions, result=result)
