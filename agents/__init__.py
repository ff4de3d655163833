"""Agents: turn observations into messages and responses into actions."""

from mmopsd.agents.prompting import PROMPTS, PromptSpec, prompt_for

__all__ = ["PROMPTS", "PromptSpec", "prompt_for"]
