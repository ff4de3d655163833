"""The loss registry: ``LOSSES.get(name)`` returns a loss function."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mmopsd.registry import Registry

LossFn = Callable[..., torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")
