"""Policies: sample responses with exact ids, score given response ids after any prompt."""

from mmopsd.policies.base import Policy, Scored
from mmopsd.policies.loading import load_policy, resolve_device, resolve_dtype
from mmopsd.policies.packaged import PACKAGED, packaged_model_path
from mmopsd.policies.text import TextPolicy
from mmopsd.policies.vision import VisionLanguagePolicy
from mmopsd.types import Encoded

__all__ = [
    "PACKAGED",
    "Encoded",
    "Policy",
    "Scored",
    "TextPolicy",
    "VisionLanguagePolicy",
    "load_policy",
    "packaged_model_path",
    "resolve_device",
    "resolve_dtype",
]
