"""LoRA adapters through peft."""

from __future__ import annotations

import torch


def apply_lora(
    model: torch.nn.Module, *, r: int, alpha: int, targets: list[str]
) -> torch.nn.Module:
    """Wrap ``model`` with trainable LoRA adapters on the ``targets`` modules.

    With LoRA the frozen teacher is simply the base model with adapters disabled.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ImportError("LoRA needs peft: pip install 'mmopsd[lora]'") from err
    config = LoraConfig(
        r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none"
    )
    return get_peft_model(model, config)
