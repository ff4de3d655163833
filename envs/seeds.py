"""Three seed streams that never share an episode: ``train`` (training rollouts),
``validation`` (every choice: wording, hyperparameters, steps, checkpoint) and ``test`` (final
numbers only). An environment's seed ``s`` of a split plays one seed of the underlying
environment, and no two splits ever play the same one, for any ``s`` below :data:`SEED_LIMIT`.

Two layouts keep ``train`` and ``test`` as they always were (results measured before
``validation`` existed replay exactly):

- :func:`offset_seed` (environments written on :class:`~mmopsd.envs.base.AgentEnv`):
  ``train`` plays ``s``, ``test`` ``s + 2**40``, ``validation`` ``s + 2**41``;
- :func:`interleaved_seed` (:class:`~mmopsd.envs.wrappers.SeedSplits`, every wrapped
  environment): ``train`` plays ``2s``, ``test`` ``2s + 1``, ``validation`` ``2**41 + s``.
"""

from __future__ import annotations

SPLITS = ("train", "validation", "test")
SEED_LIMIT = 1 << 40  # seeds of a split lie in [0, SEED_LIMIT): the streams stay disjoint
_OFFSET = {"train": 0, "test": SEED_LIMIT, "validation": 2 * SEED_LIMIT}


def check_split(split: str, what: str = "split") -> None:
    """A ValueError naming the splits for anything else."""
    if split not in SPLITS:
        raise ValueError(f"{what} must be one of {', '.join(SPLITS)}, got {split!r}")


def _check_seed(seed: int) -> None:
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seeds must lie in [0, 2**40), got {seed}")


def offset_seed(seed: int, split: str) -> int:
    """The underlying seed of ``seed`` in ``split``: ``seed`` plus the split's offset."""
    check_split(split)
    _check_seed(seed)
    return seed + _OFFSET[split]


def interleaved_seed(seed: int, split: str) -> int:
    """The underlying seed of ``seed`` in ``split``: even for ``train``, odd for ``test``,
    past both for ``validation``."""
    check_split(split)
    _check_seed(seed)
    if split == "validation":
        return 2 * SEED_LIMIT + seed
    return 2 * seed + (split == "test")
