"""Our side of the vLLM engine on CPU, against a small fake of vLLM's interfaces.

The fake mirrors only what each test needs, and says where in vLLM 0.33.0 it comes from:
- ``LLM(..., seed=)`` seeds Python's, NumPy's and torch's global generators
  (``vllm/utils/torch_utils.py``: ``set_random_seed``);
- ``model_runner.model.load_weights`` skips a tied ``lm_head.weight`` and raises when the
  embedding it is tied to is not loaded in the same call
  (``vllm/model_executor/models/utils.py``: ``AutoWeightsLoader._check_skipped_aliases``);
- ``llm_engine.reset_encoder_cache()`` (``vllm/v1/engine/llm_engine.py``);
- ``SamplingParams`` and ``TokensPrompt`` are taken as plain records.
"""

from __future__ import annotations

import importlib.machinery
import os
import random
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mmopsd.engines.build import build_engine, check_engine
from mmopsd.engines.colocated import to_generation, trained_weights
from mmopsd.errors import ConfigError
from mmopsd.policies.text import TextPolicy
from mmopsd.testing import _text_dims, tiny_text_policy, tiny_tokenizer, tiny_vl_policy


class FakeModel:
    """vLLM's model as ``load_weights`` sees it (AutoWeightsLoader's tied-alias rule)."""

    def __init__(self, tied: bool) -> None:
        self.aliases = {"lm_head.weight": "model.embed_tokens.weight"} if tied else {}
        self.calls: list[list[str]] = []
        self.weights: dict[str, torch.Tensor] = {}

    def load_weights(self, weights):
        names, skipped = [], {}
        for name, tensor in weights:
            if name in self.aliases:
                skipped[name] = self.aliases[name]
                continue
            names.append(name)
            self.weights[name] = tensor.clone()
        self.calls.append(names)
        for alias, canonical in skipped.items():
            if canonical not in names:
                raise ValueError(f"{alias!r} was skipped because it is tied to {canonical!r}")
        return set(names)


class FakeLLM:
    """``vllm.LLM``: records its arguments and the environment it was built in."""

    tied = False

    def __init__(self, model: str, seed: int = 0, **kwargs) -> None:
        self.kwargs = {"model": model, "seed": seed, **kwargs}
        self.multiprocessing = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
        random.seed(seed)  # set_random_seed, as vLLM's worker does at start
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.model = FakeModel(FakeLLM.tied)
        self.resets = {"prefix": 0, "encoder": 0}
        runner = SimpleNamespace(model=self.model)
        executor = SimpleNamespace(
            driver_worker=SimpleNamespace(worker=SimpleNamespace(model_runner=runner))
        )
        reset = lambda: self.resets.__setitem__("encoder", self.resets["encoder"] + 1)  # noqa: E731
        self.llm_engine = SimpleNamespace(model_executor=executor, reset_encoder_cache=reset)

    def reset_prefix_cache(self) -> None:
        self.resets["prefix"] += 1

    def sleep(self, level: int = 1) -> None:
        pass

    def wake_up(self, tags=None) -> None:
        pass


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: kw
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(FakeLLM, "tied", False)
    return module


def _tied_policy() -> TextPolicy:
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        **_text_dims(len(tok)), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    return TextPolicy(LlamaForCausalLM(config).eval(), tok)


def _engine(policy, tmp_path, **kw):
    (tmp_path / "config.json").write_text("{}")  # vLLM builds its model from this folder
    return build_engine("vllm", policy, student_model=str(tmp_path), sleep=False, **kw)


def test_sync_hands_every_tensor_in_one_call_and_a_tied_weight_once(fake_vllm, tmp_path):
    """Point 1: SmolLM2 and Qwen2-VL-2B tie lm_head to the embeddings; loading one tensor per
    call made vLLM's loader raise on the first sync."""
    FakeLLM.tied = True
    policy = _tied_policy()
    engine = _engine(policy, tmp_path)
    engine.sync(policy.model)
    model = engine.llm.model
    assert len(model.calls) == 1  # one load_weights call, as vLLM's own loader makes
    assert "lm_head.weight" not in model.calls[0] and "model.embed_tokens.weight" in model.calls[0]
    for name, tensor in policy.model.state_dict().items():
        if name != "lm_head.weight":
            torch.testing.assert_close(model.weights[name], tensor)
    with pytest.raises(ValueError, match="tied"):  # what the old per-tensor calls met
        for name, tensor in policy.model.state_dict().items():
            model.load_weights([(name, tensor)])


def test_sync_resets_the_prefix_and_the_encoder_caches(fake_vllm, tmp_path):
    """Point 4: image embeddings cached with the old vision weights must not be reused."""
    policy = tiny_text_policy()
    engine = _engine(policy, tmp_path)
    engine.sync(policy.model)
    engine.sync(policy.model)
    assert engine.llm.resets == {"prefix": 2, "encoder": 2}


def test_one_sleep_mode_engine_per_process(fake_vllm, tmp_path):
    """Point 2: vLLM's CuMem allocator serves one sleep-mode engine per process."""
    policy = tiny_text_policy()
    (tmp_path / "config.json").write_text("{}")
    first = build_engine("vllm", policy, student_model=str(tmp_path))
    with pytest.raises(ConfigError, match="one"):
        build_engine("vllm", policy, student_model=str(tmp_path))
    assert _engine(policy, tmp_path) is not None  # without sleep mode it may share the GPU
    del first


def test_tensor_parallelism_is_refused_with_the_fix():
    """Point 3: tp > 1 selects vLLM's multi-process executor, which sync cannot reach."""
    with pytest.raises(ConfigError, match="tensor_parallel_size must be 1"):
        check_engine("vllm", {"tensor_parallel_size": 2})


def test_the_engine_seed_is_the_runs_plus_the_rank_and_the_trainers_stream_is_kept(
    fake_vllm, tmp_path
):
    """Point 5: the run's seed reaches vLLM, ranks differ, and the global RNGs vLLM seeds
    while it starts are restored."""
    policy = tiny_text_policy()
    torch.manual_seed(123)
    random.seed(123)
    expected = (torch.rand(3), random.random())
    torch.manual_seed(123)
    random.seed(123)
    engine = _engine(policy, tmp_path, rank=1, run_seed=7)
    assert engine.llm.kwargs["seed"] == 8
    torch.testing.assert_close(torch.rand(3), expected[0])
    assert random.random() == expected[1]
    assert _engine(policy, tmp_path, rank=1, run_seed=7, seed=40).llm.kwargs["seed"] == 41


def test_in_process_vllm_is_forced_whatever_the_environment_says(fake_vllm, tmp_path, monkeypatch):
    """Point 6: an inherited VLLM_ENABLE_V1_MULTIPROCESSING=1 would move the model out of
    this process, where sync cannot load weights."""
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    engine = _engine(tiny_text_policy(), tmp_path)
    assert engine.llm.multiprocessing == "0"


def test_sampling_suppresses_vision_placeholders_and_stops_on_every_eos_id(fake_vllm, tmp_path):
    """Point 7: the same sampling as the Hugging Face path."""
    vl = tiny_vl_policy()
    params = _engine(vl, tmp_path).sampling(8, 1.0, 1.0, False)
    assert params["logit_bias"] == {i: -100.0 for i in sorted(vl.forbidden_response_ids())}
    text = tiny_text_policy()
    text.model.generation_config.eos_token_id = [text.eos_id, 7]
    policy = TextPolicy(text.model, text.tokenizer)  # reads the generation config's ids
    assert policy.stop_ids == {text.eos_id, 7}
    params = _engine(policy, tmp_path).sampling(8, 1.0, 1.0, True)
    assert params["stop_token_ids"] == sorted({text.eos_id, 7}) and params["logit_bias"] is None
    assert policy.cut_at_eos([5, 7, 6, text.eos_id]) == [5, 7]  # the HF path stops there too
    done = SimpleNamespace(token_ids=[5, 7], logprobs=None, finish_reason="stop", stop_reason=7)
    assert to_generation(done, text.eos_id, [7]).ids == [5, 7]


def test_hf_generation_stops_on_every_eos_id_of_the_generation_config():
    text = tiny_text_policy()
    prompt = text.encode([__import__("mmopsd.types", fromlist=["user"]).user("hi")])
    first = text.generate([prompt], max_new_tokens=6, greedy=True)[0]
    other = first[0]  # make the first greedy token a second end-of-sequence id
    text.model.generation_config.eos_token_id = [text.eos_id, other]
    policy = TextPolicy(text.model, text.tokenizer)
    assert policy.generate([prompt], max_new_tokens=6, greedy=True)[0] == [other]


def test_lora_modules_to_save_keep_their_trained_copy():
    """Point 9: a module trained in full under LoRA (``modules_to_save``) reaches vLLM as
    its trained copy; only peft's untouched ``original_module`` is left out."""
    from peft import LoraConfig, get_peft_model

    policy = tiny_text_policy()
    plain = set(tiny_text_policy().model.state_dict())
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], modules_to_save=["lm_head"])
    model = get_peft_model(policy.model, config)
    trained = model.get_submodule("base_model.model.lm_head").modules_to_save["default"]
    with torch.no_grad():
        trained.weight.add_(1.0)
    weights = dict(trained_weights(model))
    assert set(weights) == plain
    assert not any("original_module" in n or "modules_to_save" in n for n in weights)
    torch.testing.assert_close(weights["lm_head.weight"], trained.weight)
