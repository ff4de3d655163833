"""alfworld's own text engine, one game in process.

``AlfredTWEnv.init_env`` runs a batch of games in subprocesses; here each gymnasium
environment holds one textworld PDDL environment with the same wrappers that
``AlfredTWEnv`` installs (name demangling, game-file infos, the planner expert), so the rules,
observations, admissible commands and expert plans are alfworld's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def require_alfworld() -> None:
    """Import alfworld or explain how to install it."""
    os.environ.setdefault("ALFWORLD_DATA", str(Path.home() / ".cache" / "alfworld"))
    try:
        import alfworld  # noqa: F401
        import textworld  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "mmopsd/ALFWorld-v0 needs alfworld: pip install 'mmopsd[alfworld]' "
            "(or pip install alfworld; it compiles two native packages, needs gcc and cmake)"
        ) from err


def start_game(game_file: str | Path) -> Any:
    """A textworld environment on ``game_file`` with alfworld's wrappers and planner expert
    (``state["extra.expert_plan"]`` holds the plan from the current state)."""
    require_alfworld()
    import textworld
    from alfworld.agents.environment.alfred_tw_env import (
        AlfredDemangler,
        AlfredExpert,
        AlfredExpertType,
        AlfredInfos,
    )

    infos = textworld.EnvInfos(
        won=True, admissible_commands=True, extras=["gamefile", "expert_plan"]
    )
    wrappers = [
        AlfredDemangler(shuffle=False),
        AlfredInfos,
        AlfredExpert(expert_type=AlfredExpertType.PLANNER),
    ]
    return textworld.start(str(game_file), infos, wrappers=wrappers)


def official_games(data_dir: str | Path, split: str, task_types: tuple[str, ...]) -> list[str]:
    """Solvable official game files of a split, collected by alfworld's ``AlfredTWEnv``."""
    require_alfworld()
    from alfworld.agents.environment.alfred_tw_env import TASK_TYPES, AlfredTWEnv

    folders = {"train": "train", "valid_seen": "valid_seen", "valid_unseen": "valid_unseen"}
    modes = {"train": "train", "valid_seen": "eval_in_distribution"}
    modes["valid_unseen"] = "eval_out_of_distribution"
    root = Path(data_dir) / "json_2.1.1"
    ids = [i for i, name in TASK_TYPES.items() if name in task_types]
    config = {
        "env": {"goal_desc_human_anns_prob": 0, "task_types": ids},
        "dataset": {
            "data_path": str(root / folders["train"]),
            "eval_id_data_path": str(root / folders["valid_seen"]),
            "eval_ood_data_path": str(root / folders["valid_unseen"]),
            "num_train_games": -1,
            "num_eval_games": -1,
        },
    }
    return sorted(AlfredTWEnv(config, train_eval=modes[split]).game_files)


def has_official_games(data_dir: str | Path | None) -> bool:
    """True when ``data_dir`` holds alfworld's downloaded games."""
    return data_dir is not None and (Path(data_dir) / "json_2.1.1" / "train").is_dir()
