"""``load_policy(name)``: a packaged alias, a local directory, or a model already cached
locally. Nothing is downloaded at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from mmopsd.errors import ModelNotFoundError
from mmopsd.policies.base import Policy
from mmopsd.policies.packaged import PACKAGED, packaged_model_path
from mmopsd.policies.precision import MIXED, compute_dtype, float_logits
from mmopsd.policies.text import TextPolicy
from mmopsd.policies.vision import VISION_MODEL_TYPES, VisionLanguagePolicy

DType = Literal["auto", "float32", "bfloat16", "float16", "bf16-mixed"]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    """The weights' dtype: ``auto`` is bfloat16 on GPUs that support it, float32 elsewhere;
    ``bf16-mixed`` keeps float32 weights (its products run in bfloat16, see
    :mod:`mmopsd.policies.precision`)."""
    if dtype == "auto" or dtype == MIXED:
        if dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise ValueError(
            f"unknown dtype {dtype!r}; use auto, float32, bfloat16, float16 or {MIXED}"
        ) from None


def resolve_model_path(name: str) -> Path | str:
    """A local directory for ``name`` (alias or path), or the hub id itself if it is cached."""
    if name in PACKAGED:
        return packaged_model_path(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a directory but holds no config.json")
        return path
    if "/" in name and not path.exists():
        return name  # a hub id: loaded with local_files_only, so only from the local cache
    raise ModelNotFoundError(
        f"unknown model {name!r}: not a packaged alias ({', '.join(PACKAGED)}), "
        "not a local directory, and not a hub id (owner/name)"
    )


def load_policy(
    name: str,
    *,
    dtype: DType = "auto",
    device: str = "auto",
    image_backend: str = "auto",
) -> Policy:
    """Load a causal LM or a Qwen-VL model as a :class:`Policy`.

    Args:
        name: ``smollm2-135m`` (packaged), a local model directory, or a hub id already in
            the local Hugging Face cache.
        dtype: ``auto`` (bf16 weights on capable GPUs; fp32 weights elsewhere, computing
            in bf16 on CPUs with bf16 matrix units), ``float32``, ``bfloat16``, ``float16``,
            ``bf16-mixed`` (fp32 weights, bf16 products; :mod:`mmopsd.policies.precision`).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...
        image_backend: image resizing path for VLMs (``auto``, ``qwen_vl_utils``, ``pil``).
    """
    from transformers import AutoConfig

    where = resolve_model_path(name)
    dev = resolve_device(device)
    kw = {"local_files_only": True}
    try:
        config = AutoConfig.from_pretrained(where, **kw)
    except OSError as err:
        raise ModelNotFoundError(
            f"model {name!r} is not available locally and nothing is downloaded at run time; "
            "pass a local directory or pre-fetch it into the Hugging Face cache"
        ) from err
    torch_dtype = resolve_dtype(dtype, dev)
    if config.model_type in VISION_MODEL_TYPES:
        policy: Policy = _load_vision(where, torch_dtype, dev, image_backend, kw)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(where, **kw)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, **kw).to(dev)
        policy = TextPolicy(model, tokenizer)
    if torch_dtype == torch.float32:
        policy.compute_dtype = compute_dtype(dtype, dev)
        if policy.compute_dtype is not None:
            float_logits(policy.model)
    return policy


def _load_vision(where, torch_dtype, dev, image_backend, kw) -> VisionLanguagePolicy:
    import transformers as tf

    from mmopsd.policies.processors import image_only_processor

    model = tf.AutoModelForImageTextToText.from_pretrained(where, dtype=torch_dtype, **kw).to(dev)
    try:
        processor = tf.AutoProcessor.from_pretrained(where, **kw)
    except (ImportError, AttributeError, ValueError, TypeError):
        # No torchvision: transformers cannot build the video processor. Images still work.
        proc_cls = getattr(
            tf, type(model).__name__.replace("ForConditionalGeneration", "Processor")
        )
        tokenizer = tf.AutoTokenizer.from_pretrained(where, **kw)
        image_processor = tf.AutoImageProcessor.from_pretrained(where, **kw)
        processor = image_only_processor(
            proc_cls, image_processor, tokenizer, tokenizer.chat_template
        )
    return VisionLanguagePolicy(model, processor, image_backend=image_backend)
