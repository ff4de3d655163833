"""vLLM in the training process, on the training GPU (colocated), as a rollout engine.

The prompts are our exact ids (``TokensPrompt``; Qwen-VL images travel as
``multi_modal_data`` with each expanded ``<|image_pad|>`` run collapsed to one token, since
vLLM expands it again); the responses are vLLM's exact sampled ids with the log-probability
of each under vLLM's own numbers. After every optimizer step :meth:`VLLMEngine.sync` loads the
student's weights into vLLM (LoRA merged first; FSDP2 shards gathered; every rank calls it).
With ``sleep`` vLLM gives its memory back while the trainer runs (sleep level 2: weights and
KV cache are dropped, and the weights come back from the student, never from disk).

vLLM needs a GPU; nothing here is imported before an engine is built.
"""

from __future__ import annotations

import os
import random
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from mmopsd.engines.base import Generation
from mmopsd.errors import ConfigError
from mmopsd.types import Encoded, Message

# peft's adapter tensors; a ``modules_to_save`` module's trained copy is kept (renamed to the
# plain name) and only its untouched ``original_module`` is left out. vLLM's model knows the
# plain names alone: its AutoWeightsLoader (vllm/model_executor/models/utils.py) raises
# "There is no module or parameter named ..." for any other.
ADAPTER_MARKERS = ("lora_", "original_module.")
SUPPRESS = -100.0  # the strongest logit bias vLLM accepts (vllm/sampling_params.py clamps to ±100)
_LIVE: weakref.WeakSet[VLLMEngine] = weakref.WeakSet()


class VLLMEngine:
    """Samples with an in-process ``vllm.LLM`` holding a copy of the student's weights.

    Args:
        model_dir: the student's local model directory (vLLM builds its model from it; the
            weights are replaced by the student's on the first :meth:`sync`).
        eos_id: the end-of-sequence id.
        stop_ids: every id that ends a response (the policy's ``stop_ids``; default
            ``eos_id`` alone).
        suppressed_ids: ids that may never be sampled (a vision model's placeholders), as the
            Hugging Face path suppresses them.
        image_pad_id: the id of the image placeholder of a Qwen-VL model (None for text).
        gpu_memory_utilization: the share of GPU memory vLLM may take (weights + KV cache),
            the rest is the trainer's.
        sleep: free vLLM's memory between rollouts (``LLM.sleep(level=2)``). One sleeping
            engine per process: vLLM's CuMem allocator serves a single engine.
        dtype: vLLM's dtype (``auto``: the model's, bf16 on GPUs).
        max_model_len: the longest prompt + response (None: the model's).
        seed: vLLM's sampling seed (the trainer passes the run's seed plus the rank, so ranks
            draw different streams). vLLM seeds Python's, NumPy's and torch's global
            generators with it while it starts; they are restored afterwards, so the
            trainer's own stream does not depend on the engine.
        processes: how many training processes run (each holds its own engine on its GPU).
        **llm_kwargs: further ``vllm.LLM`` arguments (``enforce_eager``, ...).
    """

    name = "vllm"
    follows_weights = True

    def __init__(
        self,
        model_dir: str,
        eos_id: int,
        *,
        stop_ids: Sequence[int] = (),
        suppressed_ids: Sequence[int] = (),
        image_pad_id: int | None = None,
        gpu_memory_utilization: float = 0.3,
        sleep: bool = True,
        dtype: str = "auto",
        max_model_len: int | None = None,
        seed: int = 0,
        processes: int = 1,
        **llm_kwargs: Any,
    ) -> None:
        require_vllm()
        import vllm

        if sleep and any(engine.sleeps for engine in _LIVE):
            # vllm/v1/worker/gpu_worker.py asserts "CuMem allocator can only be used for one
            # instance per process" when a second sleep-mode engine loads its weights.
            raise ConfigError(
                "a sleep-mode vLLM engine already lives in this process and vLLM allows one; "
                "close it first, build this one with sleep: false, or use another process"
            )
        # The model must live in this process so that sync() can hand it our tensors: with
        # multiprocessing on, vllm/v1/engine/llm_engine.py keeps no model_executor here.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if processes > 1:  # one engine per rank, launched by torchrun / accelerate
            llm_kwargs.setdefault("distributed_executor_backend", "external_launcher")
        self.eos_id = eos_id
        self.stop_ids = sorted({eos_id, *stop_ids})
        self.logit_bias = {int(i): SUPPRESS for i in sorted(suppressed_ids)} or None
        self.image_pad_id = image_pad_id
        self.sleeps = sleep
        self.asleep = False
        with kept_rng_state():  # vllm/utils/torch_utils.py set_random_seed seeds them all
            self.llm = vllm.LLM(
                model=model_dir,
                dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
                enable_sleep_mode=sleep,
                max_model_len=max_model_len,
                seed=seed,
                **llm_kwargs,
            )
        _LIVE.add(self)

    # ---------------------------------------------------------------- generation
    def generate(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        conversations: Sequence[Sequence[Message]] | None = None,
        assistant_prefix: str = "",
    ) -> list[Generation]:
        """One response per prompt, batched by vLLM."""
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        self.wake()
        params = self.sampling(max_new_tokens, temperature, top_p, greedy)
        requests = [TokensPrompt(**vllm_prompt(p, self.image_pad_id)) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [to_generation(out.outputs[0], self.eos_id, self.stop_ids) for out in outputs]

    def sampling(self, max_new_tokens: int, temperature: float, top_p: float, greedy: bool):
        """vLLM's ``SamplingParams`` for one batch: plain sampling (top-k off), the sampled
        token's own log-prob, every end-of-sequence id stops, suppressed ids biased away."""
        from vllm import SamplingParams

        return SamplingParams(
            n=1,
            max_tokens=max_new_tokens,
            temperature=0.0 if greedy else temperature,
            top_p=1.0 if greedy else top_p,
            top_k=-1,
            logprobs=0,  # the sampled token's own log-prob
            stop_token_ids=list(self.stop_ids),
            logit_bias=self.logit_bias,
            skip_special_tokens=False,
            detokenize=False,
        )

    # ------------------------------------------------------------------- weights
    def sync(self, model: torch.nn.Module) -> None:
        """Load ``model``'s current weights into vLLM (every rank calls this: gathering
        FSDP2 shards is collective)."""
        if self.asleep:
            self.llm.wake_up(tags=["weights"])
        runner = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner
        # One call with every tensor, as vLLM's own loader does: its AutoWeightsLoader
        # (vllm/model_executor/models/utils.py) raises when a tied lm_head is loaded in a
        # call that does not also load the embedding it is tied to.
        runner.model.load_weights(trained_weights(model))
        self.llm.reset_prefix_cache()  # cached prompts were computed with the old weights
        # Image embeddings cached with the old vision weights (vllm/v1/engine/llm_engine.py:
        # "should be called when model weights are updated").
        self.llm.llm_engine.reset_encoder_cache()
        if self.asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False

    def sleep(self) -> None:
        """Drop vLLM's weights and KV cache while the trainer runs (``sleep=True`` only)."""
        if self.sleeps and not self.asleep:
            self.llm.sleep(level=2)
            self.asleep = True

    def wake(self) -> None:
        """Nothing to do when awake; waking from sleep happens in :meth:`sync`, which must
        come first (the weights were dropped)."""
        if self.asleep:
            raise RuntimeError("the vLLM engine sleeps without weights: call sync(model) first")


@contextmanager
def kept_rng_state() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global random states (CUDA's too) on exit."""
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def require_vllm() -> None:
    """Raise a :class:`ConfigError` unless vLLM is installed and a CUDA GPU is visible."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "engine: vllm needs the vllm package and a GPU (pip install vllm); use "
            "engine: hf on this machine"
        )
    if not torch.cuda.is_available():
        raise ConfigError("engine: vllm needs a CUDA GPU; use engine: hf on this machine")


def vllm_prompt(prompt: Encoded, image_pad_id: int | None) -> dict[str, Any]:
    """``TokensPrompt`` fields of one prompt: the ids (each run of image placeholders
    collapsed to one, which vLLM expands again) and the images as ``multi_modal_data``."""
    ids = list(prompt.ids)
    if image_pad_id is None or image_pad_id not in ids:
        return {"prompt_token_ids": ids}
    collapsed = [t for i, t in enumerate(ids) if t != image_pad_id or i == 0 or ids[i - 1] != t]
    out: dict[str, Any] = {"prompt_token_ids": collapsed}
    if prompt.images:
        out["multi_modal_data"] = {"image": list(prompt.images)}
    return out


def to_generation(completion: Any, eos_id: int, stop_ids: Sequence[int] = ()) -> Generation:
    """Our :class:`Generation` from a vLLM ``CompletionOutput``: its exact ``token_ids``
    (the end-of-sequence id appended when vLLM stopped on it without returning it) and the
    sampled ids' log-probs (None unless every id has one)."""
    stops = {eos_id, *stop_ids}
    ids = [int(t) for t in completion.token_ids]
    logprobs: list[float] | None = None
    if completion.logprobs is not None and len(completion.logprobs) == len(ids):
        logprobs = [float(step[t].logprob) for step, t in zip(completion.logprobs, ids)]
    reason = completion.stop_reason
    stopped_on_eos = completion.finish_reason == "stop" and (reason is None or reason in stops)
    if stopped_on_eos and (not ids or ids[-1] not in stops):
        ids.append(reason if isinstance(reason, int) else eos_id)
        logprobs = None  # the appended id has no engine log-prob
    return Generation(ids=ids, logprobs=logprobs)


def trained_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the model as a plain Hugging Face checkpoint would name them:
    a peft model's adapters merged into its base weights (and unmerged after), FSDP2 shards
    gathered into whole tensors, adapter-only tensors and ``original_module`` copies left
    out, ``modules_to_save`` copies under their plain names, and a tied weight once, under
    the name that comes first (the embedding: vLLM's canonical name of a tied pair)."""
    peft = callable(getattr(model, "merge_adapter", None))
    if peft:
        model.merge_adapter()  # type: ignore[operator]
    try:
        with torch.no_grad():
            seen: set[int] = set()
            for name, param in model.state_dict(keep_vars=True).items():
                if any(marker in name for marker in ADAPTER_MARKERS) or id(param) in seen:
                    continue  # adapters; a tied weight's second name (lm_head = embeddings)
                seen.add(id(param))
                tensor = param.detach()
                if hasattr(tensor, "full_tensor"):  # an FSDP2 shard (a DTensor)
                    tensor = tensor.full_tensor()
                elif peft:  # the merged values are unmerged again afterwards
                    tensor = tensor.clone()
                yield _plain_name(name, peft), tensor
    finally:
        if peft:
            model.unmerge_adapter()  # type: ignore[operator]


def _plain_name(name: str, peft: bool) -> str:
    if peft:
        name = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
    return name.replace("modules_to_save.default.", "")
