"""Mixed precision: float32 weights whose forward passes run in bfloat16."""

from __future__ import annotations

import pytest
import torch

from mmopsd.config import from_dict
from mmopsd.engines.prefix_cache import PrefixCache
from mmopsd.errors import ConfigError
from mmopsd.parallel import Parallel
from mmopsd.policies import precision
from mmopsd.policies.loading import resolve_dtype
from mmopsd.testing import tiny_text_policy
from mmopsd.training.components import check
from mmopsd.types import Message

CPU, GPU = torch.device("cpu"), torch.device("cuda")
needs_bf16 = pytest.mark.skipif(
    not precision.bf16_kernels(), reason="torch runs no bfloat16 attention on this CPU"
)


def test_the_setting_resolves_per_device(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: True)
    assert precision.compute_dtype("auto", CPU) is torch.bfloat16
    assert precision.compute_dtype("auto", GPU) is None  # a GPU loads bf16 weights instead
    assert precision.compute_dtype("float32", CPU) is None
    assert precision.compute_dtype("bf16-mixed", GPU) is torch.bfloat16
    monkeypatch.setattr(precision, "bf16_kernels", lambda: True)
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: False)
    assert precision.compute_dtype("auto", CPU) is None  # emulated bf16 would be slower
    assert precision.compute_dtype("bf16-mixed", CPU) is torch.bfloat16  # asked for
    monkeypatch.setattr(precision, "bf16_kernels", lambda: False)
    with pytest.raises(ValueError, match="AVX-512.*float32"):
        precision.compute_dtype("bf16-mixed", CPU)  # would fail in attention, later
    assert resolve_dtype("bf16-mixed", CPU) is torch.float32  # the weights stay float32
    with pytest.raises(ValueError, match="bf16-mixed"):
        resolve_dtype("bf8", CPU)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="AVX-512.*float32"):  # refused before the weights load
        check(from_dict({"model": {"dtype": "bf16-mixed", "device": "cpu"}}), Parallel())
    assert (
        from_dict({"model": {"dtype": "bf16-mixed", "device": "cuda"}}).model.dtype == "bf16-mixed"
    )
    with pytest.raises(ConfigError, match="dtype"):
        from_dict({"model": {"dtype": "mixed"}})


def _batch(policy):
    prompts = [policy.encode([Message("user", t)]) for t in ("go left", "open it")]
    return prompts, [[5, 6, 7], [8, 9]]


@needs_bf16
def test_scoring_computes_in_bf16_and_trains_float32_weights():
    plain, mixed = tiny_text_policy(), tiny_text_policy()
    mixed.compute_dtype = torch.bfloat16
    prompts, responses = _batch(plain)
    want = plain.score(prompts, responses).logits
    got = mixed.score(prompts, responses)
    assert got.logits.dtype is torch.bfloat16
    torch.testing.assert_close(got.logits.float(), want, atol=0.05, rtol=0.05)
    got.logits.float().logsumexp(-1).sum().backward()
    grads = [p.grad for p in mixed.model.parameters() if p.grad is not None]
    assert grads and all(g.dtype is torch.float32 for g in grads)
    assert all(p.dtype is torch.float32 for p in mixed.model.parameters())


@needs_bf16
def test_generation_with_a_prefix_cache_runs_in_bf16():
    policy = tiny_text_policy()
    policy.compute_dtype = torch.bfloat16
    cache = PrefixCache()
    prompts, _ = _batch(policy)
    first = policy.sample(prompts, max_new_tokens=3, greedy=True, prefix_cache=cache)
    assert cache.rows  # kept for the next turn
    longer = [type(p)(ids=[*p.ids, *g.ids, 11, 12]) for p, g in zip(prompts, first)]
    again = policy.sample(longer, max_new_tokens=3, greedy=True, prefix_cache=cache)
    assert [len(g.ids) for g in again] and all(1 <= len(g.ids) <= 3 for g in again)


@needs_bf16
def test_the_output_projection_keeps_float32_logits():
    import copy

    plain, mixed = tiny_text_policy(), tiny_text_policy()
    keys = list(mixed.model.state_dict())
    mixed.compute_dtype = torch.bfloat16
    assert precision.float_logits(mixed.model) and precision.float_logits(mixed.model)
    assert list(mixed.model.state_dict()) == keys  # checkpoints read as before
    twin = copy.deepcopy(mixed.model)  # a frozen teacher's copy keeps it
    assert isinstance(twin.get_output_embeddings(), precision.Float32Head)
    prompts, responses = _batch(plain)
    got = mixed.score(prompts, responses).logits
    assert got.dtype is torch.float32
    torch.testing.assert_close(got, plain.score(prompts, responses).logits, atol=0.05, rtol=0.05)


def test_eval_takes_the_precision_from_the_flag_or_the_run(tmp_path):
    from mmopsd.cli import parser
    from mmopsd.cli.eval import _settings

    assert _settings(parser().parse_args(["eval"]))["dtype"] == "auto"
    args = parser().parse_args(["eval", "--dtype", "float32"])
    assert _settings(args)["dtype"] == "float32"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: smollm2-135m\ndtype: bf16-mixed\n")
    assert (
        _settings(parser().parse_args(["eval", "--checkpoint", str(run)]))["dtype"] == "bf16-mixed"
    )
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--dtype", "fp8"])
