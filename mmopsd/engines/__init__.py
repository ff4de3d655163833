"""Rollout engines: what samples the responses of a rollout, behind one small protocol."""

from mmopsd.engines.base import Engine, Generation
from mmopsd.engines.served import OpenAIEngine

__all__ = ["Engine", "Generation", "OpenAIEngine"]
