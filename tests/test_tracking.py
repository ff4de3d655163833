"""Experiment tracking: a run with ``report_to`` logs every number of its ``metrics.jsonl``
to TensorBoard, wandb (offline) and trackio, read back from what each library wrote; the
evaluation tables and the curve too; a missing or unknown tracker is a one-line error before
anything runs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import struct
from pathlib import Path

import pytest

from mmopsd.config import from_dict
from mmopsd.errors import ConfigError
from mmopsd.testing import tiny_text_policy
from mmopsd.tracking.reading import expected_scalars, tensorboard_scalars
from mmopsd.training.loop import train
from mmopsd.training.metrics import MetricsLog


def _train(tmp_path: Path, report_to: list[str]) -> Path:
    out = tmp_path / "run"
    config = from_dict({
        "rollout": {"max_turns": 2, "max_new_tokens": 4},
        "optimizer": {"steps": 2, "batch_size": 2},
        "evaluation": {"episodes": 2, "every": 1},
        "run": {"out_dir": str(out), "report_to": report_to, "export": "none"},
    })  # fmt: skip
    train(config, policy=tiny_text_policy(), progress=False)
    return out


def _same(logged: dict[str, dict[int, float]], records: list[dict], rel: float) -> None:
    """Every number of ``records`` was logged at its step with its value."""
    want = expected_scalars(records)
    assert want and set(want) <= set(logged), sorted(set(want) - set(logged))[:5]
    for name, by_step in want.items():
        for step, value in by_step.items():
            assert math.isclose(logged[name][step], value, rel_tol=rel, abs_tol=1e-30), name


def test_tensorboard_logs_every_metric_of_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _train(tmp_path, ["tensorboard"])
    records = MetricsLog(out / "metrics.jsonl").read()
    assert {r["kind"] for r in records} >= {"train", "eval", "summary"}
    _same(tensorboard_scalars(out / "tensorboard"), records, rel=1e-6)  # float32 events
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert "curve" in acc.Tags()["images"]
    tags = acc.Tags()["tensors"]
    assert any(t.startswith("eval/student_table") for t in tags)  # the evaluation tables
    assert any(t.startswith("eval/episodes") for t in tags)  # sample episodes as text
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["episodes"] for r in evals] == [f"episodes/step-{r['step']}.jsonl" for r in evals]
    assert all((out / r["episodes"]).with_suffix(".html").is_file() for r in evals)


def _wandb_history(run_file: Path) -> dict[str, dict[int, float]]:
    """The history rows of an offline wandb run, read from its transaction log (LevelDB-style
    records of 32 KiB blocks after a 7-byte header, each a protobuf ``Record``)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, chunks = run_file.read_bytes(), 7, 32768, []
    assert data[:4] == b":W&B"
    out: dict[str, dict[int, float]] = {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunks.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        if kind in (1, 4):  # a whole record, or a record's last piece
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            if record.WhichOneof("record_type") == "history":
                row = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
                step = int(json.loads(row.pop("_step")))
                for key, value in row.items():
                    if not key.startswith("_"):
                        parsed = json.loads(value)
                        if isinstance(parsed, int | float):
                            out.setdefault(key, {})[step] = float(parsed)
    return out


def test_wandb_offline_logs_every_metric_of_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = _train(tmp_path, ["wandb"])
    records = MetricsLog(out / "metrics.jsonl").read()
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    _same(_wandb_history(run_file), records, rel=1e-12)


def test_trackio_logs_every_metric_of_the_run(tmp_path):
    pytest.importorskip("trackio")
    import trackio.sqlite_storage as storage

    assert str(storage.TRACKIO_DIR) == os.environ["TRACKIO_DIR"]  # the session's, not ~/.cache
    out = _train(tmp_path, ["trackio"])
    records = MetricsLog(out / "metrics.jsonl").read()
    logged: dict[str, dict[int, float]] = {}
    for row in storage.SQLiteStorage.get_logs("mmopsd", out.name):
        for key, value in row.items():
            if isinstance(value, int | float) and key != "step":
                logged.setdefault(key, {})[int(row["step"])] = float(value)
    _same(logged, records, rel=1e-12)


def test_an_unknown_or_missing_tracker_is_an_error_before_anything_runs(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown tracker 'mlflow'; use one of"):
        _train(tmp_path, ["mlflow"])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'mmopsd\[tensorboard\]'"):
        _train(tmp_path, ["tensorboard"])
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_continues_its_tensorboard_log(tmp_path):
    """Two steps, then the same run asked for three: it resumes from its checkpoint and the
    events still equal metrics.jsonl, step 2's latest record included."""
    pytest.importorskip("tensorboard")
    out = _train(tmp_path, ["tensorboard"])
    config = from_dict({
        "rollout": {"max_turns": 2, "max_new_tokens": 4},
        "optimizer": {"steps": 3, "batch_size": 2},
        "evaluation": {"episodes": 2, "every": 1},
        "run": {"out_dir": str(out), "report_to": ["tensorboard"], "export": "none"},
    })  # fmt: skip
    train(config, policy=tiny_text_policy(), progress=False)
    records = MetricsLog(out / "metrics.jsonl").read()
    assert max(r["step"] for r in records) == 3
    _same(tensorboard_scalars(out / "tensorboard"), records, rel=1e-6)
