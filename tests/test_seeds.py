"""Three disjoint seed streams per environment: train, validation, test. Train and test
play the seeds they always played, so results measured before validation existed replay."""

from __future__ import annotations

import gymnasium as gym
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mmopsd.envs.seeds import SEED_LIMIT, SPLITS, interleaved_seed, offset_seed

seeds = st.integers(min_value=0, max_value=SEED_LIMIT - 1)


@given(seeds, seeds, st.sampled_from(SPLITS), st.sampled_from(SPLITS))
def test_no_two_splits_ever_play_the_same_seed(a, b, one, other):
    for layout in (offset_seed, interleaved_seed):
        if one != other:
            assert layout(a, one) != layout(b, other)
        else:
            assert (layout(a, one) == layout(b, other)) == (a == b)


def test_train_and_test_play_the_seeds_they_always_played():
    assert [interleaved_seed(s, "train") for s in range(3)] == [0, 2, 4]
    assert [interleaved_seed(s, "test") for s in range(3)] == [1, 3, 5]
    assert [offset_seed(s, "test") for s in range(2)] == [1 << 40, (1 << 40) + 1]
    assert offset_seed(7, "train") == 7


def test_a_bad_split_or_seed_is_a_clear_error():
    with pytest.raises(ValueError, match="must be one of train, validation, test, got 'dev'"):
        offset_seed(0, "dev")
    with pytest.raises(ValueError, match=r"seeds must lie in \[0, 2\*\*40\)"):
        interleaved_seed(-1, "train")


def _first_tasks(env_id: str, split: str, n: int = 12, **kwargs) -> list[str]:
    env = gym.make(env_id, split=split, disable_env_checker=True, **kwargs)
    try:
        return [str(env.reset(seed=s)[0]) for s in range(n)]
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["mmopsd/KeyDoor-v0", "mmopsd/Sokoban-v0"])
def test_built_in_environments_play_another_stream_in_validation(env_id):
    train, validation, test = (_first_tasks(env_id, s) for s in ("train", "validation", "test"))
    assert validation != train and validation != test
    assert _first_tasks(env_id, "validation") == validation  # deterministic


def test_keydoor_validation_shares_the_held_out_combinations_not_the_episodes():
    kw = {"split_by": "combination", "n_doors": 2, "n_rooms": 1}
    env = gym.make("mmopsd/KeyDoor-v0", split="validation", disable_env_checker=True, **kw)
    test = gym.make("mmopsd/KeyDoor-v0", split="test", disable_env_checker=True, **kw)
    rooms = []
    for e in (env, test):
        seen = []
        for s in range(20):
            e.reset(seed=s)
            room = e.unwrapped.rooms[0]
            assert e.unwrapped._split_of(room.key, list(room.doors)) == "test"
            seen.append((room.key, room.doors))
        rooms.append(seen)
    assert rooms[0] != rooms[1]


def test_a_wrapped_environment_has_a_validation_split():
    from mmopsd.envs.wrappers import SeedSplits

    seen = {}
    for split in SPLITS:
        env = SeedSplits(gym.make("FrozenLake-v1"), split)
        env.reset(seed=3)
        seen[split] = env.unwrapped.np_random_seed
    assert seen == {"train": 6, "test": 7, "validation": 2 * SEED_LIMIT + 3}


def test_eval_runs_on_the_validation_split(tmp_path, capsys):
    from mmopsd.cli import main
    from mmopsd.testing import tiny_text_policy

    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path / "m")
    policy.tokenizer.save_pretrained(tmp_path / "m")
    code = main(["eval", "--model", str(tmp_path / "m"), "--split", "validation",
                 "--episodes", "2", "--max-new-tokens", "2"])  # fmt: skip
    assert code == 0 and '"split": "validation"' in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "m"), "--split", "dev", "--episodes", "1"]) == 2
    assert "must be one of train, validation, test" in capsys.readouterr().err


def test_generated_alfworld_games_have_a_validation_stream_of_seen_objects():
    from mmopsd.envs.alfworld_games import UNSEEN_TARGETS, draw_game

    games = {s: [draw_game(s, n) for n in range(8)] for s in ("train", "validation", "valid_seen")}
    assert games["validation"] != games["train"] and games["validation"] != games["valid_seen"]
    assert all(g.target not in UNSEEN_TARGETS for g in games["validation"])
