"""Gymnasium environments of mmopsd, registered as ``mmopsd/<Name>-v<N>``.

Observations hold what the student may see; privileged data lives in ``info["privileged"]``.
"""

from __future__ import annotations

import gymnasium as gym

REGISTERED: dict[str, str] = {
    "mmopsd/KeyDoor-v0": "mmopsd.envs.keydoor:KeyDoorEnv",
    "mmopsd/ALFWorld-v0": "mmopsd.envs.alfworld:ALFWorldEnv",
    "mmopsd/ZoomQA-v0": "mmopsd.envs.zoomqa:ZoomQAEnv",
    "mmopsd/Sokoban-v0": "mmopsd.envs.sokoban:SokobanEnv",
    "mmopsd/GUIClick-v0": "mmopsd.envs.gui:GUIClickEnv",
    "mmopsd/GUIForm-v0": "mmopsd.envs.gui:GUIFormEnv",
    "mmopsd/Crafter-v0": "mmopsd.envs.crafter:make_crafter",
}
# Benchmarks reached through wrappers: one factory, the level as a keyword.
BABYAI = ("GoToLocal", "GoTo", "Pickup", "Open", "PutNextLocal", "SynthSeq", "GoToObj", "PickupLoc")
MINIWOB = (
    "click-button",
    "click-link",
    "click-checkboxes",
    "click-tab",
    "click-dialog",
    "focus-text",
    "enter-text",
    "enter-password",
    "login-user",
    "choose-list",
    "use-autocomplete",
    "email-inbox",
)
# Further tasks with an expert (``envs/miniwob_experts.py``; each won at least 18 of 20
# held-out episodes, ``benchmarks/results/miniwob_experts.md``); the ``gui`` suite plays both.
MINIWOB_MORE = (
    "click-button-sequence",
    "click-checkboxes-large",
    "click-checkboxes-transfer",
    "click-collapsible",
    "click-collapsible-2",
    "click-collapsible-2-nodelay",
    "click-collapsible-nodelay",
    "click-dialog-2",
    "click-option",
    "click-tab-2",
    "click-tab-2-easy",
    "click-tab-2-medium",
    "click-test",
    "click-test-2",
    "click-widget",
    "email-inbox-delete",
    "email-inbox-forward",
    "email-inbox-important",
    "email-inbox-noscroll",
    "email-inbox-reply",
    "enter-date",
    "enter-text-2",
    "enter-text-dynamic",
    "enter-time",
    "find-word",
    "focus-text-2",
    "grid-coordinate",
    "guess-number",
    "identify-shape",
    "login-user-popup",
    "multi-layouts",
    "multi-orderings",
    "navigate-tree",
    "odd-or-even",
    "read-table",
    "search-engine",
    "simple-algebra",
    "simple-arithmetic",
    "social-media",
    "text-transform",
    "unicode-test",
    "use-autocomplete-nodelay",
)
KWARGS: dict[str, dict] = {}
for _task in MINIWOB + MINIWOB_MORE:
    REGISTERED[f"mmopsd/MiniWoB-{_task}-v0"] = "mmopsd.envs.miniwob:make_miniwob"
    KWARGS[f"mmopsd/MiniWoB-{_task}-v0"] = {"task": _task}
for _level in BABYAI:
    REGISTERED[f"mmopsd/BabyAI-{_level}-v0"] = "mmopsd.envs.babyai:make_babyai"
    KWARGS[f"mmopsd/BabyAI-{_level}-v0"] = {"level": _level}


def register_all() -> None:
    """Register every mmopsd environment with gymnasium (idempotent, lazy entry points)."""
    for env_id, entry_point in REGISTERED.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, kwargs=KWARGS.get(env_id, {}))


register_all()
