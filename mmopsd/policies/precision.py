"""Mixed precision: float32 weights whose matrix products run in bfloat16.

``model.dtype: bf16-mixed`` keeps the weights, their gradients and the optimizer's state in float32
and runs a policy's forward passes (generation, the teacher's and the student's scoring, and
so their backward passes) under :func:`torch.autocast` in bfloat16. On a CPU with bfloat16
matrix units (Intel AMX, ``amx_bf16``) this is about twice as fast as float32 for a small
model (SmolLM2-135M on 2 cores: a forward and backward pass of 8 x 242 tokens 7.0 s -> 3.9 s,
greedy generation of 16 tokens after 8 prompts of 1,500 tokens 21.7 s -> 10.7 s;
``benchmarks/mixed_precision.py``), while the weights are updated in float32.

``model.dtype: auto`` chooses it on such CPUs (and plain float32 on other CPUs, where bfloat16 is
emulated and slower); on a GPU ``auto`` still loads bfloat16 weights where the GPU supports
them. ``model.dtype: float32`` turns it off. The hidden states are bfloat16, but
the output projection keeps computing in float32 (:func:`float_logits`), so the logits that
the divergences compare are float32 as in float32 training; only generation's last position
and the scored response columns go through it, a small share of the work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import torch

MIXED = "bf16-mixed"


def bf16_kernels() -> bool:
    """Whether torch runs this CPU's bfloat16 attention: it needs its AVX-512 kernels
    (``ATEN_CPU_CAPABILITY`` below ``avx512`` leaves them out)."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


@cache
def cpu_bf16_units() -> bool:
    """Whether this machine's CPU has bfloat16 matrix units (the ``amx_bf16`` flag of
    ``/proc/cpuinfo``; False where that file is absent) and torch uses them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = any(
        line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines()
    )
    return flags and bf16_kernels()


def compute_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The dtype a policy's forward passes run in under autocast for the ``dtype`` setting
    on ``device``; None when they run in the weights' own. ``bf16-mixed`` on a CPU whose
    torch lacks bfloat16 kernels is a ValueError."""
    if dtype == MIXED:
        if device.type == "cpu" and not bf16_kernels():
            raise ValueError(
                f"dtype {MIXED} needs torch's AVX-512 kernels on a CPU, and this torch runs "
                f"{torch.backends.cpu.get_cpu_capability()} kernels (ATEN_CPU_CAPABILITY or "
                "the CPU); use dtype float32"
            )
        return torch.bfloat16
    if dtype == "auto" and device.type == "cpu" and cpu_bf16_units():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def computing(dtype: torch.dtype | None, device: torch.device) -> Iterator[None]:
    """Forward passes inside run in ``dtype`` (autocast on ``device``); nothing changes
    when ``dtype`` is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


class Float32Head(torch.nn.Linear):
    """A model's output projection that computes in float32 even under autocast: logits
    of bfloat16 hidden states with float32 weights, in float32 (the class of the model's
    own ``nn.Linear`` head is swapped, so its weights, their tying to the input embeddings
    and the state dict's keys stay as they are)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + b`` in float32."""
        with torch.autocast(x.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.float()
            return torch.nn.functional.linear(x.float(), self.weight.float(), bias)


def float_logits(model: torch.nn.Module) -> bool:
    """Make ``model``'s output projection compute in float32 (:class:`Float32Head`); False
    when it has no plain ``nn.Linear`` head to change."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if type(head) is not torch.nn.Linear:
        return isinstance(head, Float32Head)
    head.__class__ = Float32Head
    return True
