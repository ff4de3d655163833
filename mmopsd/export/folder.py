"""Write a policy as a transformers model folder, atomically: the folder appears only once
every file is in it, so an interrupted export never leaves half a model."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import torch

from mmopsd.errors import ConfigError
from mmopsd.policies.base import Policy

LORA_MODES = ("merge", "adapter")
CONFIG_NAME = "mmopsd_config.yaml"  # the run's config, beside the weights


def export_policy(
    policy: Policy,
    out: Path,
    *,
    card: str,
    config_yaml: str | None = None,
    lora: str = "merge",
    base_id: str | None = None,
    overwrite: bool = False,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``policy`` to ``out`` as a model folder.

    Args:
        policy: the trained policy (its model may carry LoRA adapters).
        out: the folder to create.
        card: the model card (``README.md``).
        config_yaml: the run's config, written as ``mmopsd_config.yaml``.
        lora: ``merge`` (adapters folded into the weights: a plain model) or ``adapter``
            (peft's adapter files; the base model is loaded beside them).
        base_id: the base model's hub id, recorded in a saved adapter's config.
        overwrite: replace an existing ``out``.
        state_dict: the model's tensors, whole, when the model does not hold them itself (a
            sharded model, gathered by :func:`~mmopsd.parallel.full_model_state`).
    """
    out = Path(out)
    check_target(out, overwrite)
    if lora not in LORA_MODES:
        raise ConfigError(f"lora must be one of {', '.join(LORA_MODES)}, got {lora!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        _save_model(policy.model, tmp, lora, base_id, state_dict)
        _save_tokenizer(policy, tmp)
        generation_config(policy).save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        if config_yaml is not None:
            (tmp / CONFIG_NAME).write_text(config_yaml)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_target(out: Path, overwrite: bool) -> None:
    """An existing ``out`` is replaced only with ``overwrite``; a file there never is."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; name a folder to export the model into")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; pass --overwrite to replace it")


def _save_model(
    model: torch.nn.Module,
    folder: Path,
    lora: str,
    base_id: str | None,
    state: dict[str, torch.Tensor] | None,
) -> None:
    """The weights and config; a peft model merged into a copy (the trained model is never
    changed) or saved as its adapter. ``state``: the tensors, when the model is sharded."""
    if not _is_peft(model):
        model.save_pretrained(folder, state_dict=state)
        return
    if lora == "adapter":
        model.save_pretrained(folder, state_dict=state)
        if base_id is not None:
            _set_adapter_base(folder, base_id)
        return
    if state is not None:
        model.get_base_model().save_pretrained(folder, state_dict=merged_lora(model, state))
        return
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(folder)
    del merged


def merged_lora(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A peft model's whole tensors (``state``, its own names) with its active LoRA adapter
    folded into each adapted weight, under the base model's names: ``W + B @ A * scaling``."""
    name = model.active_adapter
    cfg = model.peft_config[name]
    if getattr(cfg, "use_dora", False) or getattr(cfg, "fan_in_fan_out", False):
        raise ConfigError(
            "this LoRA variant (DoRA or fan_in_fan_out) cannot be merged from a sharded model; "
            "export it with lora: adapter"
        )
    scaling = cfg.lora_alpha / (cfg.r**0.5 if getattr(cfg, "use_rslora", False) else cfg.r)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if f".lora_A.{name}." in key or f".lora_B.{name}." in key:
            continue
        if key.endswith(".base_layer.weight"):
            stem = key.removesuffix(".base_layer.weight")
            a, b = state[f"{stem}.lora_A.{name}.weight"], state[f"{stem}.lora_B.{name}.weight"]
            tensor = tensor + (b @ a).to(tensor.dtype) * scaling
        out[key.removeprefix("base_model.model.").replace(".base_layer.", ".")] = tensor
    return out


def _is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def _set_adapter_base(folder: Path, base_id: str) -> None:
    """Point the adapter's config at the base's hub id, not at a local path."""
    import json

    file = folder / "adapter_config.json"
    data = json.loads(file.read_text())
    data["base_model_name_or_path"] = base_id
    file.write_text(json.dumps(data, indent=2) + "\n")


def _save_tokenizer(policy: Policy, folder: Path) -> None:
    """A vision model's processor (its tokenizer inside), else the tokenizer."""
    processor = getattr(policy, "processor", None)
    if processor is None:
        policy.tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
        return
    parts = {a: getattr(processor, a, None) for a in processor.get_attributes()}
    if all(p is not None for p in parts.values()):
        processor.save_pretrained(folder)
        return
    # An image-only processor (no torchvision, no video processor): its parts one by one,
    # which the loader puts back together (:func:`mmopsd.policies.loading.load_policy`).
    for part in parts.values():
        if part is not None:
            part.save_pretrained(folder)
    if processor.chat_template:
        (folder / "chat_template.jinja").write_text(processor.chat_template)


def generation_config(policy: Policy):
    """The model's generation config, stopping on every id the run stopped on."""
    from transformers import GenerationConfig

    base = getattr(policy.model, "generation_config", None)
    gen = copy.deepcopy(base) if base is not None else GenerationConfig()
    stops = sorted(policy.stop_ids)
    gen.eos_token_id = stops[0] if len(stops) == 1 else stops
    gen.pad_token_id = policy.pad_id
    return gen
