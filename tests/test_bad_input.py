"""Every mistake a user can make on the command line is one line, exit code 2, no traceback,
and nothing written: ``mmopsd: error: <what is wrong and how to fix it>``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmopsd.cli import main
from mmopsd.testing import tiny_text_policy


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny model directory and the bad files the table refers to as ``{name}``."""
    root = tmp_path_factory.mktemp("bad-input")
    model = root / "model"
    policy = tiny_text_policy()
    policy.model.save_pretrained(model)
    policy.tokenizer.save_pretrained(model)
    (root / "broken.yaml").write_text(
        "optimizer: {steps: 3}\nmethod: {loss: [forward_kl\nrun: {seed: 1}\n"
    )
    (root / "list.yaml").write_text("- steps\n- lr\n")
    (root / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    (root / "a-file").write_text("not a folder")
    (root / "empty-dir").mkdir()
    bad_run = root / "bad-run"
    (bad_run / "checkpoints" / "step-1").mkdir(parents=True)
    (bad_run / "config.yaml").write_text(f"model: {{name: {model}}}\noptimizer: {{steps: 1}}\n")
    (bad_run / "checkpoints" / "step-1" / "trainer_state.json").write_text('{"step": 1}')
    (bad_run / "checkpoints" / "step-1" / "model.safetensors").write_bytes(b"\x10\x00" * 9)
    broken_run = root / "broken-run"
    broken_run.mkdir()
    (broken_run / "config.yaml").write_text("model: [x\n")
    return {
        "model": model,
        "broken": root / "broken.yaml",
        "list": root / "list.yaml",
        "binary": root / "binary.yaml",
        "file": root / "a-file",
        "empty": root / "empty-dir",
        "bad_run": bad_run,
        "broken_run": broken_run,
        "missing": root / "no-such-file.yaml",
    }


def T(*args: str) -> list[str]:
    """A train command with the tiny model, writing (if at all) into the test's folder."""
    return ["train", "--quiet", "--set", "model.name={model}", "--set", "run.out_dir={out}", *args]


def S(*pairs: str) -> list[str]:
    """``--set`` for each pair."""
    return [x for p in pairs for x in ("--set", p)]


# (id, argv, environment variables, what the one error line must say)
CASES = [
    # --- train: files
    ("config-missing", T("--config", "{missing}"), {}, "config file not found"),
    ("config-bad-yaml", T("--config", "{broken}"), {}, "not valid YAML at line 3, column 4"),
    ("config-not-mapping", T("--config", "{list}"), {}, "must hold a mapping"),
    ("config-binary", T("--config", "{binary}"), {}, "not a UTF-8 text file"),
    # --- train: config fields
    ("set-no-equals", T(*S("steps")), {}, "must look like key=value"),
    (
        "set-bad-yaml",
        T(*S("optimizer.steps=[1")),
        {},
        "value of --set optimizer.steps is not valid YAML",
    ),
    ("unknown-field", T(*S("optimizer.stpes=3")), {}, "did you mean 'steps'"),
    ("field-type", T(*S("optimizer.steps=many")), {}, "optimizer.steps must be int"),
    ("field-zero", T(*S("optimizer.steps=0")), {}, "steps must be >= 1"),
    ("history-zero", T(*S("tasks.0.history=0")), {}, "tasks[0].history must be >= 1"),
    ("lr-negative", T(*S("optimizer.lr=-1")), {}, "lr must be > 0"),
    (
        "group-size",
        T(*S("optimizer.batch_size=5", "method.group_size=2")),
        {},
        "multiple of method.group_size",
    ),
    ("rl-mode", T(*S("method.rl=both")), {}, "rl must be one of none, add, route"),
    ("dtype", T(*S("model.dtype=float8")), {}, "dtype must be one of"),
    ("device", T(*S("model.device=gpu")), {}, "device must be auto, cpu, cuda"),
    ("top-p", T(*S("rollout.top_p=2")), {}, "rollout.top_p must lie in (0, 1]"),
    ("kwargs-not-mapping", T(*S("method.loss_kwargs=5")), {}, "method.loss_kwargs must be dict"),
    (
        "dotted-into-scalar",
        T(*S("optimizer.steps=2", "optimizer.steps.x=1")),
        {},
        "steps is not a mapping",
    ),
    # --- train: registries and their kwargs
    ("loss-name", T(*S("method.loss=kl")), {}, "unknown loss 'kl'"),
    ("loss-kwarg", T(*S("method.loss_kwargs={topk: 5}")), {}, "loss_kwargs {'topk': 5} rejected"),
    (
        "loss-jsd-beta",
        T(*S("method.loss=jsd", "method.loss_kwargs.beta=1.5")),
        {},
        "beta must lie in [0, 1]",
    ),
    ("loss-top-k", T(*S("method.loss_kwargs.top_k=0")), {}, "top_k must be a positive integer"),
    (
        "weighting-name",
        T(*S("method.token_weighting=heavy")),
        {},
        "unknown token weighting 'heavy'",
    ),
    (
        "weighting-kwarg",
        T(*S("method.token_weighting=tip", "method.weighting_kwargs.kep=0.5")),
        {},
        "weighting_kwargs has 'kep'",
    ),
    (
        "turn-weighting-name",
        T(*S("method.turn_weighting=late")),
        {},
        "unknown turn weighting 'late'",
    ),
    (
        "turn-weighting-value",
        T(*S("method.turn_weighting=discount", "method.turn_weighting_kwargs.gamma=2")),
        {},
        "gamma must lie in (0, 1]",
    ),
    ("turn-weighting-kwarg", T(*S("method.turn_weighting_kwargs.gama=0.5")), {}, "has 'gama'"),
    ("teacher-name", T(*S("teacher.update=mentor")), {}, "unknown teacher 'mentor'"),
    (
        "teacher-ema-rate",
        T(*S("teacher.update=ema", "teacher.update_kwargs={rate: 7}")),
        {},
        "ema teacher rate must lie in (0, 1], got 7",
    ),
    (
        "teacher-sync",
        T(*S("teacher.update=sync", "teacher.update_kwargs.every=0")),
        {},
        "every >= 1",
    ),
    (
        "teacher-kwarg",
        T(*S("teacher.update_kwargs.rate=0.1")),
        {},
        "teacher 'frozen' does not take",
    ),
    ("provider-name", T(*S("tasks.0.provider=oracle")), {}, "provider 'oracle'; known: compose"),
    (
        "provider-kwarg",
        T(*S("tasks.0.provider_kwargs.colour=red")),
        {},
        "provider_kwargs has 'colour'",
    ),
    (
        "provider-value",
        T(*S("tasks.0.provider=reference", "tasks.0.provider_kwargs.kind=x")),
        {},
        "reference kind must be one of",
    ),
    ("env-id", T(*S("tasks.0.env=mmopsd/Nope-v0")), {}, "unknown environment 'mmopsd/Nope-v0'"),
    ("env-value", T(*S("tasks.0.env_kwargs={n_doors: 99}")), {}, "2 <= n_doors <= 3"),
    ("env-kwarg", T(*S("tasks.0.env_kwargs.n_dors=2")), {}, "env_kwargs has 'n_dors'"),
    (
        "env-kwarg-type",
        T(*S("tasks.0.env_kwargs.n_doors=two")),
        {},
        "check the types in env_kwargs",
    ),
    ("env-split", T(*S("rollout.split=dev")), {}, "split must be one of train, validation, test"),
    ("imports", T(*S("imports=[no_such_module_xyz]")), {}, "cannot import 'no_such_module_xyz'"),
    # --- train: models and outputs
    ("model-alias", T(*S("model.name=smollm9")), {}, "unknown model 'smollm9'"),
    ("model-empty-dir", T(*S("model.name={empty}")), {}, "holds no config.json"),
    (
        "out-dir-is-file",
        T(*S("run.out_dir={file}")),
        {},
        "is a file; set run.out_dir to a directory",
    ),
    # --- eval
    ("eval-episodes-0", ["eval", "--episodes", "0"], {}, "--episodes: must be >= 1, got 0"),
    ("eval-tokenizer-alone", ["eval", "--tokenizer", "x"], {}, "pass --base-url too"),
    ("eval-chat-alone", ["eval", "--chat"], {}, "--chat is for served models"),
    (
        "eval-served-timeout",
        ["eval", "--base-url", "http://127.0.0.1:9/v1", "--request-timeout", "0"],
        {},
        "--request-timeout must be > 0",
    ),
    (
        "eval-served-checkpoint",
        ["eval", "--base-url", "http://127.0.0.1:9/v1", "--checkpoint", "{empty}"],
        {},
        "--checkpoint and --base-url exclude each other",
    ),
    ("parallel-unknown", T(*S("run.parallel=deepspeed")), {}, "parallel must be one of auto"),
    (
        "engine-unknown",
        T(*S("rollout.engine=sglang")),
        {},
        "engine must be one of hf, vllm, openai",
    ),
    (
        "engine-option",
        T(*S("rollout.engine_kwargs.temprature=1")),
        {},
        "which engine 'hf' does not take",
    ),
    (
        "engine-openai-url",
        T(*S("rollout.engine=openai")),
        {},
        "needs engine_kwargs base_url and model",
    ),
    ("engine-vllm-cpu", T(*S("rollout.engine=vllm")), {}, "engine: vllm needs"),
    ("importance-cap", T(*S("method.importance_cap=-1")), {}, "importance_cap must be >= 0"),
    ("method-unknown", T(*S("method.name=ppo")), {}, "must be one of bc_expert, custom, dagger"),
    (
        "method-clash",
        T(*S("method.name=grpo", "method.distill_coef=0.5")),
        {},
        "method grpo sets method.distill_coef",
    ),
    (
        "kl-teacher",
        T(*S("method.kl_coef=0.1", "teacher.update=ema")),
        {},
        "kl_coef needs teacher.update: frozen",
    ),
    ("ppo-epochs-0", T(*S("method.ppo_epochs=0")), {}, "ppo_epochs must be >= 1"),
    ("ood-key", T(*S("evaluation.ood=[{envs: x}]")), {}, "ood[0] has 'envs'"),
    (
        "retain-env",
        T(*S("evaluation.retain=[{env: Nope-v9}]")),
        {},
        "unknown environment 'Nope-v9'",
    ),
    ("compare-both", ["compare", "--out", "{empty}"], {}, "pass either --methods"),
    (
        "compare-method",
        ["compare", "--methods", "opsd,ppo", "--out", "{empty}"],
        {},
        "unknown method 'ppo'",
    ),
    (
        "compare-seeds",
        ["compare", "--methods", "opsd", "--seeds", "a,b", "--out", "{empty}"],
        {},
        "--seeds must be comma-separated integers",
    ),
    ("dist-timeout-0", T(*S("run.dist_timeout=0")), {}, "dist_timeout must be > 0"),
    ("eval-episodes-text", ["eval", "--episodes", "ten"], {}, "integer >= 1, got 'ten'"),
    ("eval-turns-negative", ["eval", "--max-turns", "-2"], {}, "--max-turns: must be >= 1"),
    ("eval-tokens-0", ["eval", "--max-new-tokens", "0"], {}, "--max-new-tokens: must be >= 1"),
    ("eval-env", ["eval", "--env", "Nope-v9"], {}, "unknown environment 'Nope-v9'"),
    ("eval-env-kwargs-json", ["eval", "--env-kwargs", "{n: 1"], {}, "--env-kwargs must be JSON"),
    ("eval-env-kwargs-list", ["eval", "--env-kwargs", "[1]"], {}, "must be a JSON object"),
    ("eval-env-kwargs-value", ["eval", "--env-kwargs", '{"n_rooms": 0}'], {}, "n_rooms >= 1"),
    ("eval-split", ["eval", "--split", "dev"], {}, "split must be one of train, validation, test"),
    ("eval-model", ["eval", "--model", "gpt-9"], {}, "unknown model 'gpt-9'"),
    ("eval-checkpoint-missing", ["eval", "--checkpoint", "{missing}"], {}, "does not exist"),
    (
        "eval-checkpoint-corrupt",
        ["eval", "--checkpoint", "{bad_run}"],
        {},
        "model.safetensors cannot be read",
    ),
    ("eval-run-config", ["eval", "--checkpoint", "{broken_run}"], {}, "is not valid YAML"),
    ("eval-history", ["eval", "--history", "-1"], {}, "--history must be >= 1"),
    ("eval-provider-alone", ["eval", "--provider", "reference"], {}, "pass --with-privileged too"),
    (
        "eval-provider-suite",
        ["eval", "--suite", "gui", "--with-privileged", "--provider", "hint"],
        {},
        "each environment of a suite uses its own",
    ),
    (
        "eval-provider-name",
        ["eval", "--with-privileged", "--provider", "oracle"],
        {},
        "provider 'oracle'; known: compose",
    ),
    (
        "eval-provider-kwargs-json",
        ["eval", "--with-privileged", "--provider-kwargs", "{kind"],
        {},
        "--provider-kwargs must be JSON",
    ),
    (
        "eval-provider-kwargs-list",
        ["eval", "--with-privileged", "--provider-kwargs", "[1]"],
        {},
        "--provider-kwargs must be a JSON object",
    ),
    (
        "eval-provider-kwarg",
        ["eval", "--with-privileged", "--provider", "reference", "--provider-kwargs", '{"knd": 1}'],
        {},
        "provider_kwargs has 'knd'",
    ),
    ("eval-history-zero", ["eval", "--history", "0"], {}, "--history must be >= 1"),
    ("eval-suite", ["eval", "--suite", "everything"], {}, "unknown suite 'everything'"),
    ("eval-import", ["eval", "--import", "no_such_module_xyz"], {}, "cannot import"),
    ("eval-out-is-dir", ["eval", "--out", "{empty}"], {}, "is a directory"),
    # --- demo, list, the command itself
    ("demo-name", ["demo", "chess"], {}, "invalid choice: 'chess'"),
    ("demo-field", ["demo", "--set", "optimizer.stpes=1"], {}, "did you mean 'steps'"),
    ("flat-key", ["demo", "--set", "steps=1"], {}, "config key 'steps' is now optimizer.steps"),
    ("demo-value", ["demo", "--set", "evaluation.episodes=0"], {}, "evaluation.episodes must be"),
    ("list-extra", ["list", "--all"], {}, "unrecognized arguments: --all"),
    ("no-command", [], {}, "required: command"),
    ("unknown-command", ["fly"], {}, "invalid choice: 'fly'"),
    # --- environment variables the project reads
    ("env-var-cache", ["eval"], {"MMOPSD_CACHE": "{file}"}, "MMOPSD_CACHE={file}"),
    (
        "env-var-xdg",
        ["eval"],
        {"MMOPSD_CACHE": "", "XDG_CACHE_HOME": "{file}"},
        "XDG_CACHE_HOME={file}",
    ),
    (
        "env-var-alfworld",
        ["eval", "--env", "mmopsd/ALFWorld-v0"],
        {"ALFWORLD_DATA": "{file}"},
        "ALFWORLD_DATA='{file}'",
    ),
]


def _fill(text: str, files: dict[str, Path], out: Path) -> str:
    for name, path in {**files, "out": out}.items():
        text = text.replace("{" + name + "}", str(path))
    return text


@pytest.mark.parametrize("argv, env, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_code_2(
    argv, env, expected, files, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    for name, value in env.items():
        monkeypatch.setenv(name, _fill(value, files, out))
    args = [_fill(a, files, out) for a in argv]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("mmopsd: error:")]
    assert len(errors) == 1, err
    assert _fill(expected, files, out) in errors[0]
    assert errors[0] == err.strip().splitlines()[-1]
    assert not out.exists()  # nothing was written for a run that never started


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 30
    assert {c[1][0] if c[1] else "" for c in CASES} >= {"train", "eval", "demo", "list", ""}


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--env", "mmopsd/NoSuchEnv-v0"],
        ["train", "--set", "env_kwargs={n_doors: 99}"],
        ["eval", "--episodes", "0"],
    ],
    ids=["unknown-env", "env-kwargs", "episodes-0"],
)
def test_the_console_script_prints_no_traceback(argv, tmp_path):
    """The real entry point in a fresh process, as a user runs it."""
    env = {**os.environ, "MMOPSD_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "mmopsd", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("mmopsd: error:")
    assert not (tmp_path / "runs").exists()
