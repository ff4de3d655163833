"""Agents: turn observations into messages and responses into actions."""

from mmopsd.agents.history import HistoryWindow
from mmopsd.agents.parsing import PARSERS, ParsedAction, match_admissible
from mmopsd.agents.prompting import PROMPTS, PromptSpec, prompt_for

__all__ = [
    "PARSERS",
    "PROMPTS",
    "HistoryWindow",
    "ParsedAction",
    "PromptSpec",
    "match_admissible",
    "prompt_for",
]
