"""Bad actions never crash an environment: every registered ``mmopsd/`` id gets random text.

Each step must answer with an observation inside the observation space, a finite reward and
``info["invalid"]``; text that is no action (empty, control characters, an unterminated call,
an off-screen click) is marked invalid and never ends the task; an episode ends only by
``terminated`` or by truncation at ``max_steps``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import miniwob_sets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ACTIONS_PER_ENV = 200
EXAMPLES = 10
# Each MiniWoB++ task costs a browser and about half a minute of steps: the fast suite fuzzes
# two (one click, one form), the slow suite's sweep the other ten of ``miniwob_sets.FIRST``
# (``make test-slow``; CI leaves sweeps out). The further tasks
# (``miniwob_sets.MORE``) share every wrapper and the action parser with these; each is played by
# its expert in the slow suite (tests/test_miniwob_experts.py) instead.
FAST_MINIWOB = ("mmopsd/MiniWoB-click-button-v0", "mmopsd/MiniWoB-login-user-v0")
MORE = {f"mmopsd/MiniWoB-{t}-v0" for t in miniwob_sets.MORE}
ENV_IDS = [
    pytest.param(k, marks=[pytest.mark.slow, pytest.mark.sweep])
    if "MiniWoB" in k and k not in FAST_MINIWOB
    else k
    for k in sorted(k for k in gym.registry if k.startswith("mmopsd/") and k not in MORE)
]

# Text that is no action in any environment: nothing but whitespace and control characters.
NO_TEXT = st.one_of(
    st.sampled_from(["", " ", "\n\t", "\x00", "\x1b\x07"]),
    st.text(st.characters(categories=["Cc", "Zs"]), min_size=1, max_size=30),
)
# Malformed calls: no action where actions have a grammar (``free_text`` envs take any answer).
MALFORMED = st.sampled_from(
    ['type("', "click(-5, 99999)", "click(1e309, nan)", "click(3)", "()", 'select("x"']
)
# Anything at all: unicode, huge text, calls with odd arguments.
ANY_TEXT = st.one_of(
    st.text(max_size=80),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(5_000, 10_000)),
    st.builds(
        lambda verb, a, b: f"{verb}({a}, {b})",
        st.sampled_from(["click", "type", "select", "CLICK", "go"]),
        st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=True), st.text(max_size=5)),
        st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_infinity=True)),
    ),
)


def _near_misses(commands: list[str]) -> st.SearchStrategy[str]:
    """Admissible commands bent slightly: cut, shouted, padded, doubled, punctuated."""
    if not commands:
        return st.just("open the door")
    bends = [
        lambda c: c[:-1],
        str.upper,
        lambda c: f"  {c}!!",
        lambda c: f"{c} {c}",
        lambda c: c.replace(" ", ""),
        lambda c: f"<action>{c}",
    ]
    return st.builds(lambda c, f: f(c), st.sampled_from(commands), st.sampled_from(bends))


_ENVS: dict[str, gym.Env] = {}


def _env(env_id: str) -> gym.Env:
    """One instance per id for the whole module (ALFWorld's first reset writes a game)."""
    if env_id not in _ENVS:
        _ENVS[env_id] = gym.make(env_id, disable_env_checker=True)
    return _ENVS[env_id]


def teardown_module() -> None:
    for env in _ENVS.values():
        env.close()


def _check_step(env: gym.Env, result: tuple, sent: str, must_be_invalid: bool) -> bool:
    """Assert the step's contract; True when the episode ended."""
    obs, reward, terminated, truncated, info = result
    assert env.observation_space.contains(obs), f"observation outside the space after {sent!r}"
    assert isinstance(reward, float) and math.isfinite(reward)
    assert isinstance(info["invalid"], bool)
    assert not (terminated and truncated)
    if must_be_invalid:
        assert info["invalid"], f"{sent!r} was taken as a valid action"
        assert not terminated, f"{sent!r} ended the task"
    return terminated or truncated


def _step_cap(env: gym.Env) -> int:
    """Steps before truncation: our wrapper's or AgentEnv's cap, else the benchmark's own."""
    return env.get_wrapper_attr("max_steps") or env.unwrapped.max_steps


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_text_never_crashes_an_environment(env_id):
    env = _env(env_id)
    free = env.get_wrapper_attr("free_text")
    sent = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data(), seed=st.integers(0, 2))
    def episode(data, seed):
        _, info = env.reset(seed=seed)
        steps, max_steps = 0, _step_cap(env)
        for _ in range(ACTIONS_PER_ENV // EXAMPLES):
            kind = data.draw(st.sampled_from(["empty", "malformed", "any", "near", "valid"]))
            expert = info["privileged"].get("next_action")
            commands = info.get("admissible_commands") or ([expert] if expert else [])
            if kind == "empty":
                action = data.draw(NO_TEXT)
            elif kind == "malformed":
                action = data.draw(MALFORMED)
            elif kind == "any":
                action = data.draw(ANY_TEXT)
            elif kind == "near":
                action = data.draw(_near_misses(commands))
            else:  # a valid move now and then, so that episodes progress and end
                action = data.draw(st.sampled_from(commands)) if commands else "up"
            result = env.step(action)
            sent.append(action)
            steps += 1
            info = result[4]
            invalid = kind == "empty" or (kind == "malformed" and not free)
            ended = _check_step(env, result, action, must_be_invalid=invalid)
            if not result[2]:  # not terminated: truncated exactly at the step cap
                assert result[3] == (steps >= max_steps)
            if ended:
                _, info = env.reset(seed=seed)
                steps, max_steps = 0, _step_cap(env)

    episode()
    assert len(sent) >= ACTIONS_PER_ENV
