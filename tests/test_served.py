"""Served models through ``openai``: a real ``transformers serve`` of the packaged SmolLM2 on a
free local port, compared with the same model run locally. No mock stands in for the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmopsd.config import from_dict

pytest.importorskip("openai", reason="the serve extra is missing: pip install 'mmopsd[serve]'")
pytest.importorskip("fastapi", reason="transformers serve is missing: pip install 'mmopsd[dev]'")

from mmopsd.agents.prompting import prompt_for
from mmopsd.privileged import build_provider

from mmopsd.cli import main
from mmopsd.engines.local_server import free_port, transformers_serve
from mmopsd.errors import ConfigError, ServerError
from mmopsd.policies.loading import load_policy
from mmopsd.policies.packaged import packaged_model_path
from mmopsd.policies.served import load_served_policy
from mmopsd.rollout import Sampling, make_envs, rollout

SECRET = "sk-mmopsd-test-0f7d3c9a61b24e85"
KEYDOOR = "mmopsd/KeyDoor-v0"


def _local():
    """The packaged model here, computing in float32 as the server does (mixed precision
    would pick other greedy tokens where two are nearly tied)."""
    return load_policy("smollm2-135m", dtype="float32")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return packaged_model_path("smollm2-135m")


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve") / "server.log"


@pytest.fixture(scope="module")
def server(model_dir, server_log):
    """``transformers serve`` of the packaged SmolLM2 on a free port; its base URL."""
    with transformers_serve(model_dir, log=server_log) as url:
        yield url


def _play(policy, seeds, max_turns=3):
    envs = make_envs(KEYDOOR, len(seeds), split="test")
    sampling = Sampling(max_new_tokens=8, greedy=True)
    return rollout(policy, envs, seeds, prompt_for(KEYDOOR), sampling, max_turns=max_turns)


def test_served_greedy_episodes_act_exactly_as_the_local_model(server, model_dir):
    seeds = list(range(8))
    local = _play(_local(), seeds)
    served = _play(load_served_policy(server, str(model_dir)), seeds)
    turns = 0
    for a, b in zip(local, served, strict=True):
        assert [t.action for t in a.turns] == [t.action for t in b.turns], a.trajectory_id
        # the same ids too: the text came back with the end-of-sequence token restored
        assert [t.response_ids for t in a.turns] == [t.response_ids for t in b.turns]
        turns += len(a.turns)
    assert turns > len(seeds)  # multi-turn: later prompts splice the served responses' ids


def test_the_api_key_is_never_printed_logged_or_written(server, model_dir, tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "mmopsd", "eval", "--base-url", server, "--model", str(model_dir),
        "--api-key-env", "MMOPSD_TEST_KEY", "--env", KEYDOOR, "--episodes", "2",
        "--out", str(out / "result.json"), "--markdown", str(out / "result.md"),
    ]  # fmt: skip
    env = {**os.environ, "MMOPSD_TEST_KEY": SECRET, "OPENAI_LOG": "debug"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HTTP Request: POST" in done.stderr  # the client's debug log was on
    assert SECRET not in done.stdout + done.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"result.json", "result.md"} <= {p.name for p in written}
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert json.loads((out / "result.json").read_text())["episodes"] == 2


def test_an_unreachable_server_is_one_line_naming_the_url(capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    code = main(["eval", "--base-url", url, "--model", "smollm2-135m", "--episodes", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("mmopsd: error: cannot reach the server at " + url)
    assert "--base-url" in err[0]
    assert time.monotonic() - start < 30  # one retry, not a long backoff


def test_a_model_the_server_does_not_serve_is_named_with_what_it_serves(server, capsys):
    code = main(["eval", "--base-url", server, "--model", "smollm2-135m", "--episodes", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "does not serve 'smollm2-135m'" in err and "smollm2-135m" in err


def test_a_served_model_cannot_take_a_checkpoint_or_score(server, model_dir, tmp_path, capsys):
    code = main(["eval", "--base-url", server, "--checkpoint", str(tmp_path), "--episodes", "1"])
    assert code == 2 and "exclude each other" in capsys.readouterr().err
    policy = load_served_policy(server, str(model_dir))
    with pytest.raises(TypeError, match="cannot score"):
        policy.score([], [])


def test_skill_summary_can_have_a_served_summariser(server, model_dir, tmp_path):
    provider = build_provider(
        "skill_summary",
        every=1,
        per_refresh=2,
        summariser={"base_url": server, "model": str(model_dir)},
    )
    provider.bind(load_served_policy(server, str(model_dir)), tmp_path)  # keeps the served one
    trajectories = _play(load_served_policy(server, str(model_dir)), [0, 1])
    provider.observe(trajectories, step=1)
    assert len(provider.skills) >= 1 and all(s.text and "\n" not in s.text for s in provider.skills)
    assert (tmp_path / "skills.md").is_file()


def test_a_bad_served_summariser_is_a_config_error_naming_the_fields():
    with pytest.raises(ConfigError, match="base_url and model"):
        build_provider("skill_summary", summariser={"model": {"name": "m"}})
    with pytest.raises(ConfigError, match="not temperature"):
        build_provider(
            "skill_summary", summariser={"base_url": "u", "model": "m", "temperature": 1}
        )
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerError, match="cannot reach the server at " + url):
        build_provider("skill_summary", summariser={"base_url": url, "model": "m"})


def test_training_rollouts_can_come_from_a_served_model(server, server_log, model_dir, tmp_path):
    """``engine: openai``: the training rollouts are the server's (one completion request
    per turn, seen in the server's access log), with the ids a local greedy rollout of the
    same episodes gives; the student trains and evaluates locally."""
    from mmopsd.training.loop import train

    config = from_dict({"model": {"name": "smollm2-135m"}, "rollout": {"engine": "openai", "temperature": 0, "save": True, "engine_kwargs": {"base_url": server, "model": str(model_dir)}}, "optimizer": {"steps": 1, "batch_size": 4, "micro_batch_size": 4}, "evaluation": {"every": 0, "episodes": 4, "teacher": False}, "run": {"out_dir": str(tmp_path / "run")}})  # fmt: skip
    requests = server_log.read_text().count("/v1/completions")
    train(config, progress=False)
    assert server_log.read_text().count("/v1/completions") - requests == 1 + 4  # check + turns
    saved = (tmp_path / "run/rollouts/step-1.jsonl").read_text().splitlines()
    ids = [[t["response_ids"] for t in json.loads(line)["turns"]] for line in saved]
    sampling = Sampling(max_new_tokens=config.rollout.max_new_tokens, greedy=True)
    local = rollout(
        _local(), make_envs(KEYDOOR, 4), [0, 1, 2, 3], prompt_for(KEYDOOR),
        sampling,
    )  # fmt: skip
    assert ids == [[t.response_ids for t in tr.turns] for tr in local]
    records = [
        json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    ]
    train_record = next(r for r in records if r["kind"] == "train")
    assert train_record["engine"] == "openai" and train_record["engine_mismatch"] is None


def test_chat_mode_acts_as_the_local_model_on_text(server, model_dir):
    """``--chat``: the server renders the conversation with its own copy of the template,
    so greedy answers (turned back into ids by the tokenizer) read as the local ones. This
    server cannot continue a forced answer prefix (it answers 422 to vLLM's
    ``continue_final_message``, which is then no longer sent), so the comparison is made
    without one."""
    import dataclasses

    spec = dataclasses.replace(prompt_for(KEYDOOR), assistant_prefix="")
    seeds = list(range(4))

    def play(policy):
        envs = make_envs(KEYDOOR, len(seeds), split="test")
        sampling = Sampling(max_new_tokens=8, greedy=True)
        return rollout(policy, envs, seeds, spec, sampling, max_turns=2)

    local = play(_local())
    chat = load_served_policy(server, str(model_dir), chat=True)
    served = play(chat)
    for a, b in zip(local, served, strict=True):
        assert [t.response_text for t in a.turns] == [t.response_text for t in b.turns]
    answers = chat.engine.chat_generate(
        [[{"role": "user", "content": "Say hi."}]], max_new_tokens=4, assistant_prefix="I open"
    )
    assert chat.engine._continues is False and answers[0].ids  # probed once, then plain chat


def test_a_served_teacher_acts_with_privileged_information_as_the_local_one(server, model_dir):
    """The teacher's acting context (the provider's view) goes to the server as exact ids:
    greedy teacher episodes act as the local teacher's (the data a served teacher gives)."""
    seeds = list(range(4))

    def play(policy):
        envs = make_envs(KEYDOOR, len(seeds), split="test")
        sampling = Sampling(max_new_tokens=8, greedy=True)
        provider = build_provider("hint")
        return rollout(policy, envs, seeds, prompt_for(KEYDOOR), sampling, provider=provider)

    local = play(_local())
    served = play(load_served_policy(server, str(model_dir)))
    assert [t.turns[0].response_ids for t in local] == [t.turns[0].response_ids for t in served]
    assert [t.turns[0].action for t in local] == [t.turns[0].action for t in served]
