"""Evaluation batched across environments plays what per-environment evaluation plays."""

from __future__ import annotations

from unittest import mock

import pytest
from mmopsd.agents.prompting import prompt_for

from mmopsd.evaluation import core
from mmopsd.evaluation.core import EvalPlan, evaluate_all
from mmopsd.rollout import Sampling, make_envs, rollout
from mmopsd.testing import tiny_text_policy

# Three environments of different turn caps and token budgets, as in a suite.
SUITE = (
    ("mmopsd/KeyDoor-v0", {"n_doors": 2, "n_rooms": 1}, 1, 4, 5),
    ("mmopsd/KeyDoor-v0", {"n_doors": 3, "n_rooms": 2}, 3, 6, 4),
    ("mmopsd/Sokoban-v0", {}, 4, 8, 3),
)


@pytest.fixture(scope="module")
def policy():
    return tiny_text_policy(seed=3)


def _plans():
    return [
        EvalPlan(env, prompt_for(env), n, dict(kw), "test", turns, tokens)
        for env, kw, turns, tokens, n in SUITE
    ]


def _played(policy, plans, batch_size):
    """The trajectories each plan's summary was made from."""
    seen, order = [], []
    real = core.summarise
    with mock.patch.object(core, "summarise", lambda trajs: seen.append(trajs) or real(trajs)):
        results = evaluate_all(
            policy,
            plans,
            batch_size=batch_size,
            seed_offset=100,
            on_result=lambda n, _: order.append(n),  # right after each plan's summary
        )
    return results, [seen[order.index(n)] for n in range(len(plans))]


def _alone(policy, env, kw, turns, tokens, n):
    """Today's per-environment evaluation: one batch of every episode of one environment."""
    envs = make_envs(env, n, split="test", **kw)
    sampling = Sampling(max_new_tokens=tokens, greedy=True)
    seeds = list(range(100, 100 + n))
    trajs = rollout(policy, envs, seeds, prompt_for(env), sampling, max_turns=turns)
    for e in envs:
        e.close()
    return trajs


def _actions(trajs):
    return [[(t.response_ids, t.action, t.reward) for t in tr.turns] for tr in trajs]


def test_batched_evaluation_plays_the_same_actions_as_each_environment_alone(policy):
    results, seen = _played(policy, _plans(), batch_size=4)
    assert len(seen) == len(SUITE)
    for (env, kw, turns, tokens, n), trajs, result in zip(SUITE, seen, results):
        alone = _alone(policy, env, kw, turns, tokens, n)
        assert _actions(trajs) == _actions(alone), env
        assert [t.success for t in trajs] == [t.success for t in alone]
        assert result.episodes == n
        assert max(len(t.turns) for t in trajs) <= turns
        assert all(len(t.response_ids) <= tokens for tr in trajs for t in tr.turns)


def test_at_most_batch_size_episodes_live_and_every_environment_closed(policy):
    calls, live, closed = [], [0], []
    peak = [0]
    real_generate = policy.sample

    def sample(prompts, **kw):
        calls.append(len(prompts))
        return real_generate(prompts, **kw)

    real_make = core.EnvStable.lend

    def lend(self, key):
        env = real_make(self, key)
        live[0] += 1
        peak[0] = max(peak[0], live[0])
        return env

    def take_back(self, key, env):
        live[0] -= 1
        closed.append(key)
        real_back(self, key, env)

    real_back = core.EnvStable.take_back
    with (
        mock.patch.object(policy, "sample", sample),
        mock.patch.object(core.EnvStable, "lend", lend),
        mock.patch.object(core.EnvStable, "take_back", take_back),
    ):
        results = evaluate_all(policy, _plans(), batch_size=3, seed_offset=100)
    assert peak[0] == 3 and max(calls) <= 3
    assert len(closed) == sum(n for *_, n in SUITE) and live[0] == 0
    assert [r.episodes for r in results] == [n for *_, n in SUITE]


def test_each_plan_is_reported_as_it_finishes(policy):
    order = []
    evaluate_all(policy, _plans(), batch_size=16, on_result=lambda n, r: order.append(n))
    assert sorted(order) == [0, 1, 2]


def test_a_batch_size_below_one_is_refused(policy):
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_all(policy, _plans(), batch_size=0)


def test_without_a_batch_size_a_cpu_model_holds_eight_browsers_of_32_episodes(policy):
    assert core.DEFAULT_BATCH_SIZE == 32 and core.browser_slots(policy) == 8
    served = mock.Mock(spec=[])  # no device: a served model, whose server batches
    assert core.browser_slots(served) is None
    peak, live = [0], [0]
    real_lend, real_back = core.EnvStable.lend, core.EnvStable.take_back

    def lend(self, key):
        live[0] += 1
        peak[0] = max(peak[0], live[0])
        return real_lend(self, key)

    def take_back(self, key, env):
        live[0] -= 1
        real_back(self, key, env)

    plans = [EvalPlan("mmopsd/KeyDoor-v0", prompt_for("mmopsd/KeyDoor-v0"), 12, {}, "test",
                      1, 4)]  # fmt: skip
    with (
        mock.patch.object(core.EnvStable, "lend", lend),
        mock.patch.object(core.EnvStable, "take_back", take_back),
    ):
        (result,) = evaluate_all(policy, plans)
    assert peak[0] == 12 and result.episodes == 12  # a text environment: all at once


def test_browsers_are_bounded_apart_and_the_actions_do_not_change(policy):
    """With ``concurrent_slots``, at most that many episodes of threaded environments (here
    the Sokoban plan, standing for a browser) are live, the others fill the remaining slots,
    and every episode plays what it plays alone."""
    sokoban = core.env_key("mmopsd/Sokoban-v0", {"split": "test"})
    live, peak, most = {}, [0], [0]
    real_lend, real_back = core.EnvStable.lend, core.EnvStable.take_back

    def lend(self, key):
        live[key] = live.get(key, 0) + 1
        peak[0] = max(peak[0], live.get(sokoban, 0))
        most[0] = max(most[0], sum(live.values()))
        return real_lend(self, key)

    def take_back(self, key, env):
        live[key] -= 1
        real_back(self, key, env)

    concurrent = mock.patch.object(core.EnvStable, "concurrent", lambda self, key: key == sokoban)
    with (
        concurrent,
        mock.patch.object(core, "browser_slots", lambda policy: 1),
        mock.patch.object(core.EnvStable, "lend", lend),
        mock.patch.object(core.EnvStable, "take_back", take_back),
    ):
        results, seen = _played(policy, _plans(), batch_size=None)
    assert peak[0] == 1 and most[0] > 1
    env, kw, turns, tokens, n = SUITE[2]
    assert _actions(seen[2]) == _actions(_alone(policy, env, kw, turns, tokens, n))
    assert [r.episodes for r in results] == [n for *_, n in SUITE]
