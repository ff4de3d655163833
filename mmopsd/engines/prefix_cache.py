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

On a CPU (``ragged``), where compute and not parallelism bounds a forward pass, the new tokens
of every prompt of a batch are first fed one prompt at a time (:meth:`PrefixCache.fill`), with
no padding, and kept as rows; ``generate`` then feeds one token a row. A batch of prompts of
unequal lengths no longer pays for its padding, and identical prompts (a group of samples of
one state) are prefilled once.

Kept rows are forgotten when the weights change (any in-place update of a parameter, as an
optimizer step, bumps its version counter), when a row is extended by the next turn, and
oldest-first beyond ``max_bytes``. Text models with a plain (full-attention) cache only.
"""

from __future__ import annotations

import inspect
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

    def __init__(self, max_bytes: int = 2 * 1024**3, ragged: bool | None = None) -> None:
        self.max_bytes = max_bytes
        self.ragged = ragged  # None: on a CPU
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
        self,
        model: torch.nn.Module,
        prompts: Sequence[Sequence[int]],
        pad_id: int,
        spare: int = 64,
    ) -> Reused:
        """The inputs of a ``generate`` call over ``prompts``, reusing kept rows (after
        :meth:`fill` when ``ragged``: call it with the model in evaluation mode); the cache
        has room for ``spare`` more positions (the tokens to generate) before it copies."""
        self._check_version(model)
        self.prompt_tokens += sum(len(p) for p in prompts)
        ragged = _device(model).type == "cpu" if self.ragged is None else self.ragged
        if ragged and len(prompts) > 1:
            self.reused_tokens += self.fill(model, prompts)
            found = [self._longest(p) for p in prompts]
        else:
            found = [self._longest(p) for p in prompts]
            self.reused_tokens += sum(c for _, c in found)
        cached = [c for _, c in found]
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
        cache = self._cache(found, t, model, spare + width) if t else None
        for key, _ in found:  # a row this call continues is kept again, longer, afterwards
            if key is not None:
                self.rows.pop(key, None)
        return Reused(ids.to(device), mask.to(device), cache, sum(cached))

    def fill(self, model: torch.nn.Module, prompts: Sequence[Sequence[int]]) -> int:
        """Feed every prompt but its last token on top of its longest kept row and keep the
        result as a row; return how many tokens came from rows kept before this call.

        Prompts are fed in groups of similar new length (:func:`groups`), so padding costs
        little; identical prompts are fed once."""
        todo: dict[tuple[int, ...], tuple[tuple[int, ...] | None, int]] = {}
        reused = 0
        for prompt in prompts:
            key, c = self._longest(prompt)
            reused += c
            head = tuple(prompt[: len(prompt) - 1])
            if len(head) > c:
                todo[head] = (key, c)
        items = sorted(todo.items(), key=lambda kv: len(kv[0]) - kv[1][1])
        for group in groups([len(h) - c for h, (_, c) in items]):
            self._feed(model, [items[i] for i in group])
        for key, _ in todo.values():  # a continued row lives on in its longer row
            if key is not None and key not in todo:
                self.rows.pop(key, None)
        self._evict()
        return reused

    def _feed(
        self,
        model: torch.nn.Module,
        items: list[tuple[tuple[int, ...], tuple[tuple[int, ...] | None, int]]],
    ) -> None:
        """One forward pass over a group: each row's kept part right-aligned at ``t``, its new
        tokens from ``t`` on (padding after them is never attended to by a real token)."""
        found = [kc for _, kc in items]
        t = max(c for _, c in found)
        width = max(len(h) - c for h, (_, c) in items)
        b, device = len(items), _device(model)
        ids = torch.zeros((b, width), dtype=torch.long)
        mask = torch.zeros((b, t + width), dtype=torch.long)
        positions = torch.zeros((b, width), dtype=torch.long)
        for i, (head, (_, c)) in enumerate(items):
            n = len(head) - c
            ids[i, :n] = torch.tensor(head[c:], dtype=torch.long)
            mask[i, t - c : t + n] = 1
            positions[i] = torch.arange(c, c + width)
        cache = self._cache(found, t, model, width) if t else None
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                    position_ids=positions.to(device), use_cache=True, logits_to_keep=1,
                    **{cache_keyword(model): cache})  # fmt: skip
        layers = out.cache.layers if hasattr(out, "cache") else out.past_key_values.layers
        for i, (head, (_, c)) in enumerate(items):
            cut = slice(t - c, t + len(head) - c)
            self.rows[head] = _Row(np.asarray(head), [la.keys[i, :, cut].clone() for la in layers],
                                   [la.values[i, :, cut].clone() for la in layers])  # fmt: skip

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
        self,
        found: list[tuple[tuple[int, ...] | None, int]],
        t: int,
        model: torch.nn.Module,
        spare: int,
    ) -> DynamicCache:
        """One ``[B, heads, t, head_dim]`` cache per layer, rows right-aligned at ``t``, with
        room for ``spare`` more positions."""
        some = self.rows[next(k for k, _ in found if k is not None)]
        layers = []
        for layer in range(len(some.keys)):
            h, _, d = some.keys[layer].shape
            shape = (len(found), h, t + spare, d)
            k = torch.zeros(shape, dtype=some.keys[layer].dtype, device=some.keys[layer].device)
            v = torch.zeros_like(k)
            for i, (key, c) in enumerate(found):
                if key is not None and c:
                    k[i, :, t - c : t] = self.rows[key].keys[layer][:, :c]
                    v[i, :, t - c : t] = self.rows[key].values[layer][:, :c]
            layers.append(GrowingLayer(k, v, t))
        cache = DynamicCache(config=model.config)
        cache.layers = layers
        return cache

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


class GrowingLayer(DynamicLayer):
    """A :class:`~transformers.cache_utils.DynamicLayer` that writes new positions into
    spare room of its buffers (doubling them when full) instead of concatenating: a generated
    token no longer copies the whole cache. ``keys``/``values`` are views of the first
    ``length`` positions."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self._keys, self._values, self.length = keys, values, length
        self.device, self.is_initialized = keys.device, True
        self._view()

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``key_states``/``value_states`` after the kept positions; return all."""
        n = key_states.shape[-2]
        if self._keys is None:  # after a reset
            self._keys = key_states.new_zeros((*key_states.shape[:2], 0, key_states.shape[-1]))
            self._values = value_states.new_zeros(self._keys.shape)
            self.device, self.is_initialized = key_states.device, True
        if self.length + n > self._keys.shape[-2]:
            room = max(2 * self._keys.shape[-2], self.length + n)
            self._keys = _grown(self._keys, self.length, room)
            self._values = _grown(self._values, self.length, room)
        self._keys[:, :, self.length : self.length + n] = key_states
        self._values[:, :, self.length : self.length + n] = value_states
        self.length += n
        self._view()
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        """As :class:`DynamicLayer` (a negative count drops that many last positions)."""
        super().crop(tokens_to_remove)
        self._rebase()

    def batch_repeat_interleave(self, repeats: int) -> None:
        """As :class:`DynamicLayer`."""
        super().batch_repeat_interleave(repeats)
        self._rebase()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """As :class:`DynamicLayer`."""
        super().batch_select_indices(indices)
        self._rebase()

    def reset(self) -> None:
        """As :class:`DynamicLayer`: forget everything."""
        super().reset()
        self._keys = self._values = None  # type: ignore[assignment]
        self.length = 0

    def _view(self) -> None:
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def _rebase(self) -> None:
        self._keys, self._values = self.keys.contiguous(), self.values.contiguous()
        self.length = self._keys.shape[-2]
        self._view()


def _grown(buffer: torch.Tensor, length: int, room: int) -> torch.Tensor:
    shape = (*buffer.shape[:2], room, buffer.shape[-1])
    out = buffer.new_zeros(shape)
    out[:, :, :length] = buffer[:, :, :length]
    return out


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model under data-parallel and adapter wrappers."""
    while True:
        if isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        elif callable(getattr(model, "get_base_model", None)):
            model = model.get_base_model()
        else:
            return model


def cache_keyword(model: torch.nn.Module) -> str:
    """The keyword a model's forward takes a cache by: ``cache`` since transformers renamed
    it, ``past_key_values`` before (a keyword the forward does not know would be dropped
    into its ``**kwargs`` and the cache silently ignored)."""
    params = inspect.signature(type(unwrapped(model)).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def groups(lengths: Sequence[int], overhead: int = 64) -> list[list[int]]:
    """Split ascending ``lengths`` into consecutive groups, each fed as one padded batch,
    minimising the tokens computed (each group pays ``len(group) * max(group)`` plus a fixed
    ``overhead`` in tokens for its forward pass)."""
    n = len(lengths)
    best = [0] + [0] * n  # best[j]: cost of the first j lengths
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        best[j], cut[j] = min((best[i] + overhead + (j - i) * lengths[j - 1], i) for i in range(j))
    out, j = [], n
    while j:
        out.append(list(range(cut[j], j)))
        j = cut[j]
    return out[::-1]
