"""Data-parallel training for real: 2 gloo processes under torchrun against one process on
the same episodes (greedy rollouts of a float64 tiny model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmopsd.config import merge
from mmopsd.engines.local_server import free_port

WORKER = Path(__file__).with_name("distributed_worker.py")
# Two ranks sum the same per-turn terms as one process, in another order, and DDP averages in
# float64: the weights after a few Adam steps agree to about 1e-12 relative; 1e-9 leaves room
# and is still far below one step's change (lr 1e-3).
TOL = dict(rtol=1e-9, atol=1e-11)


def _config(out: Path, **kw) -> dict:
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_rooms": 2}}],
        "rollout": {"max_new_tokens": 3, "max_turns": 2, "temperature": 0.0},
        "optimizer": {"steps": 3, "batch_size": 4, "micro_batch_size": 1, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 3, "teacher": False},
        "run": {
            "save_every": 1,
            "keep_checkpoints": 5,
            "out_dir": str(out),
            "seed": 0,
            "parallel": "ddp",
            "dist_timeout": 60,
        },
    }
    return merge(base, kw)


def _run(config: dict, procs: int, **env) -> subprocess.CompletedProcess:
    if procs == 1:
        command = [sys.executable, str(WORKER), json.dumps(config)]
    else:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
            str(WORKER), json.dumps(config),
        ]  # fmt: skip
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    try:
        return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)
    except subprocess.TimeoutExpired:
        # Seen once in about 50 launches on a CI machine: a 2-process launch that never
        # finished (well past dist_timeout, so not a collective of ours). A second hang fails.
        warnings.warn(
            f"a launch hung for 300 s and is tried once more: {command[:6]}", stacklevel=2
        )
        if procs > 1:
            command[command.index("--master_port") + 1] = str(free_port())
        return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)


def _weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / "checkpoints" / f"step-{step}" / "model.safetensors"))


def _exported(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], **TOL, msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The one-process run."""
    out = tmp_path_factory.mktemp("one") / "run"
    done = _run(_config(out, run={"parallel": "none"}), 1)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_update_exactly_as_one(mode, reference, tmp_path):
    out = tmp_path / "run"
    done = _run(_config(out, run={"parallel": mode}), 2)
    assert done.returncode == 0, done.stderr[-3000:]
    for step in (1, 2, 3):
        _assert_same(_weights(out, step), _weights(reference, step))
    moved = [not torch.equal(_weights(out, 1)[k], w) for k, w in _weights(out, 3).items()]
    assert all(moved)  # it trained
    # the exported final model (gathered whole from the shards under FSDP) is the reference's
    _assert_same(_exported(out), _exported(reference))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == [r["kind"] for r in ref]  # one writer, no doubles
    assert {r["parallel"] for r in records if r["kind"] == "train"} == {mode}
    for r, q in zip(records, ref):
        if r["kind"] == "train":
            assert r["distilled_turns"] == q["distilled_turns"]
            assert r["response_tokens"] == q["response_tokens"]
            assert r["loss"] == pytest.approx(q["loss"], rel=1e-9)
            # the synchronised gradient itself, before clipping (Adam would hide its scale)
            assert r["grad_norm"] == pytest.approx(q["grad_norm"], rel=1e-9)
        if r["kind"] == "eval":  # 3 episodes over 2 ranks, gathered
            assert r["student"]["episodes"] == q["student"]["episodes"] == 3


FEATURES = dict(
    zip(
        ["lora-frozen", "live-jsd", "ema-rl-groups", "grpo-ppo-kl-lora", "sft-teacher"],
        [
            {
                "model": {"lora": True, "lora_targets": ["q_proj", "v_proj"]},
                "teacher": {"update": "frozen"},
            },
            {"method": {"loss": "jsd"}, "teacher": {"update": "live"}},
            {
                "method": {"rl": "add", "group_size": 2},
                "teacher": {"update": "ema", "update_kwargs": {"rate": 0.5}},
            },
            {
                "model": {"lora": True, "lora_targets": ["q_proj", "v_proj"]},
                "method": {
                    "distill_coef": 0.0,
                    "rl": "add",
                    "group_size": 2,
                    "ppo_epochs": 2,
                    "kl_coef": 0.1,
                },
            },
            {"method": {"actor": "teacher", "loss": "sft"}},
        ],
        strict=True,
    )
)
# The default suite runs each feature in one mode (every feature once, both modes several
# times, LoRA in each); the sweep runs the rest of the grid (``make test-slow``).
COVERING = {"lora-frozen": "fsdp", "live-jsd": "fsdp", "sft-teacher": "fsdp",
            "ema-rl-groups": "ddp", "grpo-ppo-kl-lora": "ddp"}  # fmt: skip
GRID = [
    pytest.param(mode, options, id=f"{mode}-{name}",
                 marks=() if COVERING[name] == mode else [pytest.mark.slow, pytest.mark.sweep])
    for mode in ("ddp", "fsdp")
    for name, options in FEATURES.items()
]  # fmt: skip


@pytest.mark.parametrize(("mode", "options"), GRID)
def test_lora_teachers_and_rl_equal_one_process(mode, options, one_process, tmp_path):
    def config(out, parallel):
        return _config(
            out, **merge(options, {"optimizer": {"steps": 2}, "run": {"parallel": parallel}})
        )

    one = one_process(options, lambda out: config(out, "none"))
    two = _run(config(tmp_path / "two", mode), 2)
    assert two.returncode == 0, two.stderr[-3000:]
    _assert_same(_weights(tmp_path / "two", 2), _weights(one, 2))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The one-process run of a set of options, made once for every mode compared with it."""
    runs: dict[str, Path] = {}

    def run(options: dict, config) -> Path:
        key = json.dumps(options, sort_keys=True)
        if key not in runs:
            out = tmp_path_factory.mktemp("one-process")
            done = _run(config(out), 1)
            assert done.returncode == 0, done.stderr[-3000:]
            runs[key] = out
        return runs[key]

    return run


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("ddp", "ddp"),
        pytest.param("fsdp", "fsdp", marks=[pytest.mark.slow, pytest.mark.sweep]),
        ("fsdp", "none"),
        ("none", "fsdp"),
    ],
)  # fsdp -> fsdp in the sweep: fsdp -> none and none -> fsdp cover both of its ends
def test_a_resumed_run_continues_exactly_in_any_mode(first, then, reference, tmp_path):
    procs = {"none": 1, "ddp": 2, "fsdp": 2}
    done = _run(
        _config(tmp_path / "run", optimizer={"steps": 2}, run={"parallel": first}), procs[first]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    again = _run(_config(tmp_path / "run", run={"parallel": then}), procs[then])
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_same(_weights(tmp_path / "run", 3), _weights(reference, 3))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["parallel"] for r in records if r["kind"] == "train"] == [
        "none" if first == "none" else first,
        "none" if first == "none" else first,
        then,
    ]


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_a_rank_that_raises_ends_the_run_with_its_message(mode, tmp_path):
    start = time.monotonic()
    config = _config(tmp_path / "run", run={"dist_timeout": 30, "parallel": mode})
    done = _run(config, 2, FAIL_AT_STEP="2", FAIL_RANK="1")
    assert done.returncode != 0
    assert "rank 1 failed on purpose at step 2" in done.stdout + done.stderr
    assert time.monotonic() - start < 120
    assert not (tmp_path / "run" / "checkpoints" / "step-2").exists()


def test_a_multi_process_launch_needs_parallel_ddp(tmp_path):
    done = _run(_config(tmp_path / "run", run={"parallel": "none"}), 2)
    assert done.returncode != 0 and "set run.parallel: ddp or auto" in done.stdout + done.stderr


def test_tasks_must_divide_among_the_processes(tmp_path):
    done = _run(_config(tmp_path / "run", optimizer={"batch_size": 3}), 2)
    assert done.returncode != 0
    assert "cannot be shared by 2 processes" in done.stdout + done.stderr


@pytest.mark.slow
def test_accelerate_launch_runs_the_demo_config_on_two_cpu_processes(tmp_path):
    """The acceptance command as written: ``accelerate launch --num_processes 2 -m mmopsd
    train --config <demo> --set steps=2``, with accelerate's default config being the
    shipped ``examples/accelerate/two_processes.yaml`` (without a config saying multi-process,
    or ``--multi_gpu``, accelerate starts one process on a machine without GPUs)."""
    from importlib import resources

    pytest.importorskip("accelerate", reason="pip install 'mmopsd[distributed]'")
    hf_home = tmp_path / "hf"
    (hf_home / "accelerate").mkdir(parents=True)
    shipped = Path(__file__).parents[1] / "examples" / "accelerate" / "two_processes.yaml"
    shutil.copy(shipped, hf_home / "accelerate" / "default_config.yaml")
    env = {**os.environ, "HF_HOME": str(hf_home)}
    with resources.as_file(resources.files("mmopsd.configs") / "keydoor_demo.yaml") as demo:
        command = [
            str(Path(sys.executable).with_name("accelerate")), "launch",
            "--num_processes", "2", "--main_process_port", str(free_port()),
            "-m", "mmopsd", "train", "--config", str(demo), "--set", "optimizer.steps=2",
            "--set", f"run.out_dir={tmp_path / 'run'}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    first_failure = [line for line in done.stderr.splitlines() if line.startswith("[rank0]")]
    assert done.returncode == 0, "\n".join(first_failure[-40:]) + "\n" + done.stderr[-2000:]
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2] and all(r["processes"] == 2 for r in train)
    assert done.stdout.count("student after training") == 1  # one summary, from rank 0
