"""Key-value cache reuse across the turns of multi-turn episodes.

A turn's prompt is the previous turn's prompt, its response and the new observation, token for
token (:mod:`mmopsd.rollout` never re-tokenizes the history); with a history window, the task
at its head stays. :class:`PrefixCache` keeps, after each batched ``generate``, every row's
keys and values for its exact ids (prompt and response, padding left out); the next call finds,
for each prompt, the kept row that shares the longest beginning with it (the keys and values of
a beginning depend on it alone), and feeds only the tokens after it: each row's cached part
is placed right-aligned before a left-padded block of new tokens, so positions (counted over
real tokens by the attention mask) are those of a full prefill. Prefill work then grows with
the new tokens of a turn, not with the whole conversation.

Kept rows are forgotten when the weights change (any in-place update of a parameter, as an
optimizer step, bumps its version counter), when a row is extended by the next turn, and
oldest-first beyond ``max_bytes``. Text models with a plain (full-attention) cache only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


@dataclass
class _Row:
    ids: np.ndarray
    keys: list[torch.Tensor]  # per layer [heads, length, head_dim]
    values: list[torch.Tensor]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


@dataclass
class Reused:
    """A batch laid out for ``generate`` on top of reused rows: ``[cached | new]``."""

    input_ids: torch.Tensor  # [B, T + L]
    attention_mask: torch.Tensor  # [B, T + L]
    cache: DynamicCache | None  # T positions; None when no row is reused
    reused_tokens: int


class PrefixCache:
    """Rows of earlier generations by their exact ids (see the module notes)."""

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        self.max_bytes = max_bytes
        self.rows: OrderedDict[tuple[int, ...], _Row] = OrderedDict()
        self.version: int | None = None
        self.reused_tokens = 0  # totals, for benchmarks and tests
        self.prompt_tokens = 0

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        """Whether ``model``'s cache is plain full attention on every layer (a sliding
        window or a recurrent state cannot be rebuilt from kept rows)."""
        config = getattr(model, "config", None)
        if config is None:
            return False
        layers = DynamicCache(config=config).layers
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    def clear(self) -> None:
        """Forget every row."""
        self.rows.clear()

    def layout(
        self, model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_id: int
    ) -> Reused:
        """The inputs of a ``generate`` call over ``prompts``, reusing kept rows."""
        self._check_version(model)
        found = [self._longest(p) for p in prompts]
        cached = [c for _, c in found]
        self.prompt_tokens += sum(len(p) for p in prompts)
        self.reused_tokens += sum(cached)
        t = max(cached)
        new = [list(p[c:]) for p, c in zip(prompts, cached)]
        width = max(len(n) for n in new)
        b, device = len(prompts), _device(model)
        ids = torch.full((b, t + width), pad_id, dtype=torch.long)
        mask = torch.zeros((b, t + width), dtype=torch.long)
        for i, (p, c, n) in enumerate(zip(prompts, cached, new)):
            ids[i, t - c : t] = torch.tensor(list(p[:c]), dtype=torch.long)
            mask[i, t - c : t] = 1
            ids[i, t + width - len(n) :] = torch.tensor(n, dtype=torch.long)
            mask[i, t + width - len(n) :] = 1
        cache = self._cache(found, t, model) if t else None
        for key, _ in found:  # a row this call continues is kept again, longer, afterwards
            if key is not None:
                self.rows.pop(key, None)
        return Reused(ids.to(device), mask.to(device), cache, sum(cached))

    def keep(
        self,
        cache: DynamicCache,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        responses: Sequence[Sequence[int]],
    ) -> None:
        """Keep every row of a finished ``generate``: its prompt's real positions and the
        response tokens the cache holds (all but a last token that was never fed back)."""
        width = input_ids.shape[1]
        held = cache.get_seq_length() - width  # generated positions in the cache
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        for i, response in enumerate(responses):
            n = min(len(response), held)
            real = attention_mask[i].nonzero().squeeze(-1)
            where = torch.cat([real, torch.arange(width, width + n, device=real.device)])
            ids = (*input_ids[i, real].tolist(), *response[:n])
            row = _Row(np.asarray(ids), [k[i, :, where].clone() for k, _ in layers],
                       [v[i, :, where].clone() for _, v in layers])  # fmt: skip
            self.rows[ids] = row
        self._evict()

    def _longest(self, prompt: Sequence[int]) -> tuple[tuple[int, ...] | None, int]:
        """The kept row sharing the longest beginning with ``prompt`` (keys and values of a
        beginning depend on it alone, so a row is used up to where the two part), and that
        length; at least one token of ``prompt`` is left to feed."""
        best: tuple[tuple[int, ...] | None, int] = (None, 0)
        if not self.rows:
            return best
        target = np.asarray(prompt[: len(prompt) - 1])
        for key, row in self.rows.items():
            n = min(len(row.ids), len(target))
            if n <= best[1] or not n or row.ids[0] != target[0]:
                continue
            differ = np.flatnonzero(row.ids[:n] != target[:n])
            common = int(differ[0]) if differ.size else n
            if common > best[1]:
                best = (key, common)
        return best

    def _cache(
        self, found: list[tuple[tuple[int, ...] | None, int]], t: int, model: torch.nn.Module
    ) -> DynamicCache:
        """One ``[B, heads, t, head_dim]`` cache per layer, rows right-aligned at ``t``."""
        some = self.rows[next(k for k, _ in found if k is not None)]
        data = []
        for layer in range(len(some.keys)):
            h, _, d = some.keys[layer].shape
            shape = (len(found), h, t, d)
            k = torch.zeros(shape, dtype=some.keys[layer].dtype, device=some.keys[layer].device)
            v = torch.zeros_like(k)
            for i, (key, c) in enumerate(found):
                if key is not None and c:
                    k[i, :, t - c :] = self.rows[key].keys[layer][:, :c]
                    v[i, :, t - c :] = self.rows[key].values[layer][:, :c]
            data.append((k, v))
        return DynamicCache(data, config=model.config)

    def _check_version(self, model: torch.nn.Module) -> None:
        version = sum(p._version for p in model.parameters())
        if version != self.version:
            self.rows.clear()
            self.version = version

    def _evict(self) -> None:
        total = sum(r.nbytes for r in self.rows.values())
        while self.rows and total > self.max_bytes:
            _, row = self.rows.popitem(last=False)
            total -= row.nbytes


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
