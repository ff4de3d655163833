"""The environment's scripted expert as a responder: its next action
(``info["privileged"]["next_action"]``) written as the model's reply, in the model's ids.
Expert cloning plays with it and DAgger labels with it, so both train on the same ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmopsd.policies.base import Policy

KEY = "next_action"


def expert_action(info: Mapping[str, Any]) -> str | None:
    """The expert's next action in the state ``info`` describes (None where it names none)."""
    action = info.get("privileged", {}).get(KEY)
    return None if action is None or not str(action).strip() else str(action)


def expert_ids(policy: Policy, action: str) -> list[int]:
    """``action`` as the model's reply: its ids and the end of the turn."""
    return [*policy.tokenize(action).ids, policy.eos_id]
