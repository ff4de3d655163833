"""Activation checkpointing (``model.activation_checkpointing``): the same gradients, a LoRA
model included, and a clear error for a model that cannot recompute its layers."""

from __future__ import annotations

import pytest
import torch

from mmopsd.errors import ConfigError
from mmopsd.policies.checkpointing import recompute_activations, recomputes_activations
from mmopsd.testing import tiny_text_policy
from mmopsd.types import Encoded


def _grads(lora: bool, checkpointing: bool) -> dict[str, torch.Tensor]:
    policy = tiny_text_policy(seed=3)
    policy.model.double()
    if lora:
        pytest.importorskip("peft")
        from mmopsd.training.lora import apply_lora

        torch.manual_seed(0)
        policy.model = apply_lora(policy.model, r=4, alpha=8, targets=["q_proj", "v_proj"])
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: a gradient through A needs B != 0
                torch.nn.init.normal_(p, std=0.1)
    if checkpointing:
        recompute_activations(policy.model)
        assert recomputes_activations(policy.model)
    policy.model.train()
    prompts = [Encoded(ids=[5, 6, 7, 8, 9, 10]), Encoded(ids=[11, 12, 13])]
    scored = policy.score(prompts, [[20, 21, 22], [23, 24]])
    (scored.logits.log_softmax(-1).exp() * scored.mask[..., None]).pow(2).sum().backward()
    return {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True])
def test_checkpointing_gives_the_same_gradients(lora):
    plain, recomputed = _grads(lora, False), _grads(lora, True)
    assert plain and set(plain) == set(recomputed)
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=1e-10, atol=1e-12)


def test_a_model_that_cannot_recompute_its_layers_is_named():
    with pytest.raises(ConfigError, match="Linear does not support activation checkpointing"):
        recompute_activations(torch.nn.Linear(2, 2))
