"""Activation (gradient) checkpointing: a training forward keeps each decoder layer's input
only, and the backward pass recomputes the rest layer by layer.

A step's memory then grows with the tokens of a micro-batch at a few bytes per layer instead
of tens of kilobytes (every projection, the MLP's intermediate and the attention's saved
tensors), which is what long multi-turn prompts need; the price is one more forward per
micro-batch. Generation and the teacher's scoring run without gradients and are unchanged.
"""

from __future__ import annotations

import torch

from mmopsd.errors import ConfigError


def recompute_activations(model: torch.nn.Module) -> None:
    """Turn on non-reentrant activation checkpointing in ``model`` (a transformers model, or
    a peft model around one); raises :class:`ConfigError` for a model that cannot."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(inner, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"{type(inner).__name__} does not support activation checkpointing: set "
            "model.activation_checkpointing: false"
        )
    kwargs = {"use_reentrant": False}  # reentrant checkpoints lose the gradient of frozen inputs
    if hasattr(inner, "activation_checkpointing_enable"):  # transformers >= 5.x
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def recomputes_activations(model: torch.nn.Module) -> bool:
    """Whether some layer of ``model`` checkpoints its activations."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())
