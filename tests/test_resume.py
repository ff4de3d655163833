"""Resuming: a damaged latest checkpoint is named and skipped; a finished run is not redone."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.errors import CheckpointError
from mmopsd.testing import tiny_text_policy
from mmopsd.training import checkpoint
from mmopsd.training import loop as trainer_mod
from mmopsd.training.resume import CheckpointWarning


def _config(tmp_path, **kw) -> TrainConfig:
    base = {
        "model": {"name": "tiny"},
        "rollout": {"max_new_tokens": 2},
        "optimizer": {"steps": 3, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 2, "teacher": False},
        "run": {"save_every": 1, "keep_checkpoints": 3, "out_dir": str(tmp_path / "run")},
    }
    return from_dict(merge(base, kw))


def _records(tmp_path) -> list[dict]:
    text = (tmp_path / "run" / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _counting(monkeypatch, name: str) -> list[int]:
    """Record the steps at which ``trainer.<name>`` runs."""
    real = getattr(trainer_mod, name)
    calls: list[int] = []

    def wrapped(step, *args, **kwargs):
        calls.append(step)
        return real(step, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, name, wrapped)
    return calls


def _truncate(file, keep: float = 0.5) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "damage",
    [
        ("model.safetensors", "truncate"),
        ("state.pt", "truncate"),
        ("model.safetensors", "flip"),
        ("trainer_state.json", "garbage"),
    ],
    ids=lambda d: "-".join(d),
)
def test_a_damaged_latest_checkpoint_is_named_and_the_run_resumes_from_the_previous(
    tmp_path, monkeypatch, damage
):
    trainer_mod.train(
        _config(tmp_path, optimizer={"steps": 2}), policy=tiny_text_policy(), progress=False
    )
    root = tmp_path / "run" / "checkpoints"
    assert [p.name for p in checkpoint.candidates(root)] == ["step-2", "step-1"]
    name, how = damage
    bad = root / "step-2" / name
    if how == "truncate":
        _truncate(bad)
    elif how == "flip":  # same size, one byte changed: only the checksum can tell
        data = bytearray(bad.read_bytes())
        data[len(data) // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
    else:
        bad.write_text("{not json")
    steps = _counting(monkeypatch, "train_step")
    with pytest.warns(CheckpointWarning, match=f"step-2.*{name}") as caught:
        trainer_mod.train(_config(tmp_path), policy=tiny_text_policy(), progress=False)
    assert "resuming from the newest one that loads" in str(caught[0].message)
    assert steps == [2, 3]  # step 1 came from the checkpoint; steps 2 and 3 were trained
    records = _records(tmp_path)
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    assert [r["kind"] for r in records].count("summary") == 1
    assert checkpoint.latest(root).name == "step-3"
    checkpoint.verify(root / "step-3")


def test_a_bad_checkpoint_changes_nothing_when_it_fails_to_load(tmp_path):
    policy = tiny_text_policy()
    opt = torch.optim.AdamW(policy.model.parameters(), lr=1e-3)
    root = tmp_path / "ckpt"
    path = checkpoint.save(root, 1, policy.model, opt)
    _truncate(path / "state.pt")
    (path / "manifest.json").unlink()  # an older checkpoint: no checksums, checked on load
    other = tiny_text_policy(seed=1)
    before = {n: p.detach().clone() for n, p in other.model.named_parameters()}
    with pytest.raises(CheckpointError, match="state.pt cannot be read"):
        checkpoint.load(path, other.model, torch.optim.AdamW(other.model.parameters()))
    for n, p in other.model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_no_loadable_checkpoint_stops_with_advice_and_keeps_the_metrics(tmp_path):
    trainer_mod.train(
        _config(tmp_path, optimizer={"steps": 1}), policy=tiny_text_policy(), progress=False
    )
    metrics = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    _truncate(tmp_path / "run" / "checkpoints" / "step-1" / "model.safetensors")
    with (
        pytest.warns(CheckpointWarning),
        pytest.raises(CheckpointError, match="no checkpoint .* loads.*resume=false"),
    ):
        trainer_mod.train(_config(tmp_path), policy=tiny_text_policy(), progress=False)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == metrics


def test_a_finished_run_says_so_and_evaluates_nothing(tmp_path, monkeypatch, capsys):
    first = trainer_mod.train(_config(tmp_path, optimizer={"steps": 2}), policy=tiny_text_policy())
    records = _records(tmp_path)
    evals = _counting(monkeypatch, "run_eval")
    builds = []
    monkeypatch.setattr(trainer_mod, "build", lambda *a, **k: builds.append(1))
    again = trainer_mod.train(_config(tmp_path, optimizer={"steps": 2}), policy=tiny_text_policy())
    assert "is finished" in "".join(capsys.readouterr())
    assert evals == [] and builds == []  # no evaluation, not even a model
    assert _records(tmp_path) == records  # no second eval or summary record
    assert again.table() == first.table()


def test_a_run_killed_before_its_summary_completes_it_once(tmp_path, monkeypatch):
    trainer_mod.train(
        _config(tmp_path, optimizer={"steps": 2}), policy=tiny_text_policy(), progress=False
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    assert json.loads(lines[-1])["kind"] == "summary"
    metrics.write_text("\n".join(lines[:-1]) + "\n")  # killed after the last checkpoint
    evals = _counting(monkeypatch, "run_eval")
    steps = _counting(monkeypatch, "train_step")
    trainer_mod.train(
        _config(tmp_path, optimizer={"steps": 2}), policy=tiny_text_policy(), progress=False
    )
    assert evals == [] and steps == []
    kinds = [r["kind"] for r in _records(tmp_path)]
    assert kinds.count("summary") == 1 and kinds.count("eval") == 2


def test_the_cli_reports_a_finished_run_and_exits_0(tmp_path, capsys):
    from mmopsd.cli import main

    policy_dir = tmp_path / "model"
    policy = tiny_text_policy()
    policy.model.save_pretrained(policy_dir)
    policy.tokenizer.save_pretrained(policy_dir)
    args = [
        "train",
        "--quiet",
        "--set",
        f"model.name={policy_dir}",
        "--set",
        f"run.out_dir={tmp_path}/run",
    ]
    for key, value in {
        "optimizer": {"steps": 1, "batch_size": 2},
        "evaluation": {"episodes": 2, "teacher": False},
    }.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    size = (tmp_path / "run" / "metrics.jsonl").stat().st_size
    capsys.readouterr()
    assert main(args[:1] + args[2:]) == 0
    assert "is finished" in "".join(capsys.readouterr())
    assert (tmp_path / "run" / "metrics.jsonl").stat().st_size == size


def test_a_torn_last_metrics_line_is_skipped_and_a_bad_middle_line_named(tmp_path):
    from mmopsd.errors import MmopsdError, MmopsdWarning
    from mmopsd.training.metrics import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"kind": "train", "step": 1})
    with log.path.open("a") as fh:
        fh.write('{"kind": "tra')  # the disk filled mid-write
    with pytest.warns(MmopsdWarning, match="torn last line"):
        assert log.read() == [{"kind": "train", "step": 1}]
    log.path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(MmopsdError, match="line 2 is not JSON"):
        log.read()


def test_a_full_disk_while_saving_names_the_problem_and_keeps_nothing_half_written(
    tmp_path, monkeypatch
):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    root = tmp_path / "checkpoints"
    checkpoint.save(root, 1, model, optimizer)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(CheckpointError, match="no space left on the disk .* step-2.*resume"):
        checkpoint.save(root, 2, model, optimizer)
    assert sorted(p.name for p in root.iterdir()) == ["step-1"]
