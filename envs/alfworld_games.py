"""ALFWorld games generated offline from the PDDL domain and grammar shipped in alfworld.

The official games come from a download that is not always possible. This module writes games
in the same format (a ``game.tw-pddl`` JSON holding ``pddl_domain``, ``grammar`` with the task
sentence, ``pddl_problem`` and ``solvable``, next to a ``traj_data.json`` with the task type
and targets), so alfworld's own engine, wrappers and expert planner play them unchanged.

Each game is drawn from a seed: a room of 6 to 10 receptacles (some openable), a handful of
objects, a target object hidden in one receptacle (possibly a closed one) and a goal from
alfworld's goal library. Four task types: ``pick_and_place_simple``,
``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep`` and
``pick_cool_then_place_in_recep``. A game is kept only after the planner's plan, played in
alfworld's environment, wins it.

Splits: ``train`` and ``valid_seen`` share the object vocabulary and draw from disjoint seed
streams; ``valid_unseen`` uses target objects that never appear as targets in ``train``.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

TASK_TYPES = (
    "pick_and_place_simple",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
)
# ``validation``: games like ``valid_seen``'s (seen objects) from a seed stream of its own, for
# choices; ``valid_seen`` (``test``) reports.
SPLITS = ("train", "validation", "valid_seen", "valid_unseen")
SPLIT_SEED_OFFSET = {
    "train": 0,
    "valid_seen": 1 << 32,
    "valid_unseen": 2 << 32,
    "validation": 3 << 32,
}

# Receptacle type -> openable. SinkBasin, Microwave and Fridge carry the clean/heat/cool skills.
RECEPTACLES = {
    "CounterTop": False,
    "DiningTable": False,
    "SideTable": False,
    "Shelf": False,
    "Desk": False,
    "Drawer": True,
    "Cabinet": True,
    "Fridge": True,
    "Microwave": True,
    "SinkBasin": False,
    "StoveBurner": False,
    "GarbageCan": False,
}
SKILL_RECEPTACLE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
# Object type -> (cleanable, heatable, coolable).
OBJECTS = {
    "Apple": (True, True, True),
    "Tomato": (True, True, True),
    "Potato": (True, True, True),
    "Egg": (True, True, True),
    "Bread": (False, True, True),
    "Mug": (True, True, True),
    "Cup": (True, True, True),
    "Bowl": (True, True, True),
    "Plate": (True, True, True),
    "Pan": (True, False, True),
    "Lettuce": (True, False, True),
    "Fork": (True, False, False),
    "Spoon": (True, False, False),
    "Spatula": (True, False, False),
    "Book": (False, False, False),
    "Pen": (False, False, False),
    "CellPhone": (False, False, False),
    "KeyChain": (False, False, False),
    "Vase": (False, False, False),
    "SoapBar": (True, False, False),
}
UNSEEN_TARGETS = ("Potato", "Cup", "Lettuce", "Spatula", "Vase")
# Places a target can be put in (the goal's receptacle), per task type.
PLACE_TARGETS = ("CounterTop", "DiningTable", "SideTable", "Shelf", "Desk", "Drawer", "Cabinet")
SKILL_FLAG = {
    "pick_clean_then_place_in_recep": 0,
    "pick_heat_then_place_in_recep": 1,
    "pick_cool_then_place_in_recep": 2,
}


@dataclass(frozen=True)
class GameSpec:
    """What one generated game holds.

    Attributes:
        task_type: one of :data:`TASK_TYPES`.
        target: the object type to move.
        place: the receptacle type to move it to.
        receptacles: ``(type, number)`` of every receptacle in the room.
        objects: ``(type, number, (receptacle type, number))`` of every object.
    """

    task_type: str
    target: str
    place: str
    receptacles: tuple[tuple[str, int], ...]
    objects: tuple[tuple[str, int, tuple[str, int]], ...]


def draw_game(split: str, seed: int, task_types: tuple[str, ...] = TASK_TYPES) -> GameSpec:
    """The game of ``split`` and ``seed`` (deterministic)."""
    if split not in SPLITS:
        raise ValueError(f"unknown ALFWorld split {split!r}; use one of {', '.join(SPLITS)}")
    unknown = set(task_types) - set(TASK_TYPES)
    if unknown or not task_types:
        raise ValueError(
            f"generated ALFWorld games cover {', '.join(TASK_TYPES)}; got {sorted(task_types)}"
        )
    rng = random.Random(SPLIT_SEED_OFFSET[split] + seed)
    task_type = task_types[rng.randrange(len(task_types))]
    unseen = split == "valid_unseen"
    candidates = [
        o
        for o, flags in OBJECTS.items()
        if (o in UNSEEN_TARGETS) == unseen
        and (task_type not in SKILL_FLAG or flags[SKILL_FLAG[task_type]])
    ]
    target = rng.choice(candidates)
    place = rng.choice(PLACE_TARGETS)
    kinds = {
        place,
        "CounterTop",
        *([SKILL_RECEPTACLE[task_type]] if task_type in SKILL_RECEPTACLE else []),
    }
    others = [r for r in RECEPTACLES if r not in kinds]
    kinds |= set(rng.sample(others, rng.randint(2, 4)))
    receptacles: list[tuple[str, int]] = []
    for kind in sorted(kinds):
        count = rng.randint(1, 3) if kind in ("Drawer", "Cabinet", "Shelf") else 1
        receptacles += [(kind, n + 1) for n in range(count)]
    # The target starts anywhere except in a receptacle of the goal's type.
    starts = [r for r in receptacles if r[0] != place and r[0] not in SKILL_RECEPTACLE.values()]
    objects = [(target, 1, rng.choice(starts))]
    fillers = [o for o in OBJECTS if o != target]
    for kind in rng.sample(fillers, rng.randint(3, 6)):
        objects.append((kind, 1, rng.choice(receptacles)))
    return GameSpec(task_type, target, place, tuple(receptacles), tuple(objects))


def _id(kind: str, n: int) -> str:
    # alfworld's demangler names "Sink|...|SinkBasin" "sinkbasin"; other ids are "Type|n".
    return f"Sink_bar_{n}_bar_SinkBasin" if kind == "SinkBasin" else f"{kind}_bar_{n}"


def problem_pddl(spec: GameSpec) -> str:
    """The PDDL problem of a game, goal taken from alfworld's goal library."""
    from alfworld.gen import goal_library

    otypes = sorted({o for o, _, _ in spec.objects} | {"Knife", "ButterKnife"})
    rtypes = sorted({r for r, _ in spec.receptacles} | set(SKILL_RECEPTACLE.values()))
    objects = ["agent1 - agent", "loc_bar_0 - location"]
    objects += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    location = {r: i + 1 for i, r in enumerate(spec.receptacles)}
    init = ["(atLocation agent1 loc_bar_0)"]
    for r, i in location.items():
        rid = _id(*r)
        objects += [f"{rid} - receptacle", f"loc_bar_{i} - location"]
        init += [f"(receptacleType {rid} {r[0]}Type)", f"(receptacleAtLocation {rid} loc_bar_{i})"]
        if RECEPTACLES[r[0]]:
            init.append(f"(openable {rid})")
    for kind, n, where in spec.objects:
        oid = _id(kind, n)
        objects.append(f"{oid} - object")
        init += [
            f"(objectType {oid} {kind}Type)",
            f"(inReceptacle {oid} {_id(*where)})",
            f"(objectAtLocation {oid} loc_bar_{location[where]})",
            f"(pickupable {oid})",
        ]
        for flag, name in zip(OBJECTS[kind], ("cleanable", "heatable", "coolable")):
            if flag:
                init.append(f"({name} {oid})")
    init += [f"(canContain {r}Type {o}Type)" for r in rtypes for o in otypes]
    goal = goal_library.gdict[spec.task_type]["pddl"].format(obj=spec.target, recep=spec.place)
    return (
        "(define (problem mmopsd_generated)\n    (:domain alfred)\n    (:objects\n        "
        + "\n        ".join(objects)
        + "\n    )\n    (:init\n        "
        + "\n        ".join(init)
        + "\n    )\n"
        + goal.replace("#", "-")
    )


def task_sentence(spec: GameSpec) -> str:
    """The task in words, from alfworld's templates (the first template of the type)."""
    from alfworld.gen import goal_library

    template = goal_library.gdict[spec.task_type]["templates"][0]
    return template.format(obj=spec.target.lower(), recep=spec.place.lower(), toggle="", mrecep="")


def write_game(spec: GameSpec, directory: Path) -> Path:
    """Write ``game.tw-pddl`` and ``traj_data.json`` (atomically); returns the game file."""
    import alfworld

    data = Path(alfworld.__file__).parent / "data"
    grammar = (data / "alfred.twl2").read_text().replace("UNKNOWN GOAL", task_sentence(spec))
    game = {
        "pddl_domain": (data / "alfred.pddl").read_text(),
        "grammar": grammar,
        "pddl_problem": problem_pddl(spec),
        "solvable": True,
    }
    traj = {
        "task_type": spec.task_type,
        "pddl_params": {
            "object_target": spec.target,
            "parent_target": spec.place,
            "toggle_target": "",
            "mrecep_target": "",
            "object_sliced": False,
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / "traj_data.json", json.dumps(traj))
    path = directory / "game.tw-pddl"
    _atomic_write(path, json.dumps(game))
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def generated_game(root: Path, split: str, seed: int, task_types: tuple[str, ...]) -> Path:
    """The game file of ``(split, seed)`` under ``root``, generated and checked on first use.

    The check plays the expert planner's plan in alfworld's environment; a game it does not
    win raises (it never has, but a changed alfworld release could break the format).
    """
    spec = draw_game(split, seed, task_types)
    tag = "-".join(sorted(task_types)) if tuple(task_types) != TASK_TYPES else "all"
    directory = Path(root) / split / tag / f"{seed:08d}"
    path = directory / "game.tw-pddl"
    if (directory / "checked").exists():
        return path
    write_game(spec, directory)
    plan = solve(path)
    if plan is None:
        raise RuntimeError(f"alfworld's planner could not solve generated game {path}")
    _atomic_write(directory / "checked", json.dumps({"expert_plan": plan}))
    return path


def solve(game_file: Path, max_steps: int = 50) -> list[str] | None:
    """Play the expert planner's next action until the game is won; the plan, or None."""
    from mmopsd.envs.alfworld_engine import start_game

    env = start_game(game_file)
    state = env.reset()
    played: list[str] = []
    for _ in range(max_steps):
        plan = state["extra.expert_plan"]
        if not plan:
            return None
        state, _, done = env.step(plan[0])
        played.append(plan[0])
        if state["won"]:
            return played
        if done:
            return None
    return None
