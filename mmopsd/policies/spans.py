"""Logits of spans of text sequences, with the beginnings that rows share computed once.

:meth:`Policy.score_spans <mmopsd.policies.base.Policy.score_spans>` asks for the logits that
predict token spans inside whole sequences. Training batches hold sequences that begin alike:
the turns of one episode under a history window all start with the task message (and the
system prompt). Rows whose ids share a beginning of at least ``min_shared`` tokens form a
group; each group's beginning is fed once (one batched forward pass over the groups), its keys
and values are copied to the group's rows, and only the rest of every row is fed on top of
them, at its true positions (counted from the attention mask, as a full forward pass counts
them). Keys and values of a beginning depend on it alone, so every logit is the one a full
forward pass gives; gradients flow back through the copies into the shared pass. Where
nothing is shared, one plain padded forward pass runs.

Logits are computed only at the asked positions of each row (a 2-D ``logits_to_keep``, which
transformers' models take through ``slice_logits_to_keep``), else at the union of the asked
positions of all rows; each span's rows are then read out of them.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mmopsd.engines.prefix_cache import PrefixCache, cache_keyword, unwrapped
from mmopsd.policies.checkpointing import recomputes_activations
from mmopsd.types import Encoded

MIN_SHARED = 32  # tokens: a shorter common beginning is not worth a second forward pass


@dataclass(frozen=True)
class Group:
    """Rows that begin with the same ``length`` ids."""

    rows: tuple[int, ...]
    length: int


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many ids ``a`` and ``b`` share from their start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def shared_groups(
    sequences: Sequence[Sequence[int]], limits: Sequence[int], min_shared: int = MIN_SHARED
) -> list[Group]:
    """Groups of at least two rows sharing at least ``min_shared`` ids from the start, each
    beginning at most ``limits[row]`` long (rows in no group are left out). Sorting the rows
    by their ids puts those that share a beginning next to each other; a group's beginning
    is the shortest shared one of neighbours inside it."""
    order = sorted(range(len(sequences)), key=lambda i: list(sequences[i]))
    groups: list[Group] = []
    run, length = [order[0]], 0
    for a, b in itertools.pairwise(order):
        shared = min(common_length(sequences[a], sequences[b]), limits[a], limits[b])
        if shared >= min_shared:
            length = shared if len(run) == 1 else min(length, shared)
            run.append(b)
            continue
        if len(run) > 1:
            groups.append(Group(tuple(run), length))
        run, length = [b], 0
    if len(run) > 1:
        groups.append(Group(tuple(run), length))
    return groups


def forward_spans(
    model: torch.nn.Module,
    sequences: Sequence[Encoded],
    spans: Sequence[tuple[int, int, int]],
    pad_id: int,
    device: torch.device,
    *,
    share: bool = True,
) -> torch.Tensor:
    """``[len(spans), R, V]`` logits: row k holds the logits predicting the ``length`` ids
    of ``sequences[row]`` from ``start`` on (``spans[k] = (row, start, length)``), padded to
    the longest span (R at least 1). ``share`` False feeds every row whole."""
    ids = [s.ids for s in sequences]
    limits = [len(seq) - 1 for seq in ids]
    for row, start, _ in spans:
        limits[row] = min(limits[row], start - 1)  # a span's logits come from the fed part
    groups = shared_groups(ids, limits) if share and len(ids) > 1 else []
    fed = [0] * len(ids)  # ids of each row taken from its group's shared pass
    for g in groups:
        for row in g.rows:
            fed[row] = g.length
    cache = _shared_pass(model, ids, groups, pad_id, device) if groups else None
    width = max(len(seq) - c for seq, c in zip(ids, fed))
    head = cache[0].shape[2] if cache is not None else 0  # shared positions in the cache
    input_ids, mask, positions = _layout(ids, fed, head, width, pad_id)
    # Row r's token j sits at column width - len(r) + j; the logits predicting it one before.
    cols = [[width - len(ids[r]) + s + j - 1 for j in range(n)] for r, s, n in spans]
    per_row: list[set[int]] = [set() for _ in ids]
    for (r, _, _), cs in zip(spans, cols):
        per_row[r].update(cs)
    wanted = [sorted(cs) or [width - 1] for cs in per_row]

    def call(logits_to_keep: torch.Tensor) -> torch.Tensor:
        kwargs: dict[str, object] = {"use_cache": False}
        if cache is not None:
            kwargs = {
                cache_keyword(model): _expanded(model, cache, groups, len(ids)),
                "use_cache": True,
            }
        out = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=logits_to_keep.to(device),
            **kwargs,
        )
        return out.logits

    logits, lookup = _kept_logits(model, call, wanted)
    return _span_rows(logits, lookup, spans, cols, device)


def _layout(
    ids: list[list[int]], fed: list[int], head: int, width: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, attention mask and positions of the rows' unshared ids, left-padded to
    ``width``; the mask also covers each row's ``fed`` shared positions among the cache's
    ``head``."""
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), head + width), dtype=torch.long)
    positions = torch.zeros((len(ids), width), dtype=torch.long)
    for row, (seq, c) in enumerate(zip(ids, fed)):
        n = len(seq) - c
        input_ids[row, width - n :] = torch.tensor(seq[c:], dtype=torch.long)
        mask[row, head - c : head] = 1
        mask[row, head + width - n :] = 1
        positions[row, width - n :] = torch.arange(c, len(seq))
    return input_ids, mask, positions


def _span_rows(
    logits: torch.Tensor,
    lookup: list[dict[int, int]],
    spans: Sequence[tuple[int, int, int]],
    cols: list[list[int]],
    device: torch.device,
) -> torch.Tensor:
    """One row of logits per span, its kept columns in order, padded to the longest."""
    r_len = max(1, max(n for _, _, n in spans))
    rows = torch.tensor([[r] * r_len for r, _, _ in spans], device=device)
    index = torch.tensor(
        [
            [lookup[r][c] for c in cs] + [0] * (r_len - len(cs))
            for (r, _, _), cs in zip(spans, cols)
        ],
        device=device,
    )
    return logits[rows, index]


# Per model class: whether its forward keeps per-row positions (a 2-D ``logits_to_keep``).
_PER_ROW: dict[type, bool] = {}


def _per_row(model: torch.nn.Module) -> bool:
    """Whether the model's forward slices logits with transformers' ``slice_logits_to_keep``
    (which takes per-row positions): its defining module imports it."""
    kind = type(unwrapped(model))
    if kind not in _PER_ROW:
        module = sys.modules.get(kind.__module__)
        _PER_ROW[kind] = getattr(module, "slice_logits_to_keep", None) is not None
    return _PER_ROW[kind]


def _kept_logits(
    model: torch.nn.Module,
    call: Callable[[torch.Tensor], torch.Tensor],
    wanted: Sequence[Sequence[int]],
) -> tuple[torch.Tensor, list[dict[int, int]]]:
    """Logits at the ``wanted`` columns of each row, and per row where each column landed.

    Each row's own columns (``logits_to_keep`` of shape ``[rows, positions]``) where the
    model's forward supports it (transformers' ``slice_logits_to_keep``), else the union of
    all rows' columns for every row (more vocabulary-sized rows: the turns of a conversation
    sit at other columns in each row)."""
    if len(wanted) > 1 and _per_row(model):
        width = max(len(w) for w in wanted)
        keep = torch.tensor([[*w, *[w[-1]] * (width - len(w))] for w in wanted])
        return call(keep), [{c: k for k, c in enumerate(w)} for w in wanted]
    union = sorted({c for w in wanted for c in w})
    where = {c: k for k, c in enumerate(union)}
    return call(torch.tensor(union)), [where for _ in wanted]


def _shared_pass(
    model: torch.nn.Module,
    ids: Sequence[Sequence[int]],
    groups: Sequence[Group],
    pad_id: int,
    device: torch.device,
) -> tuple[torch.Tensor, ...]:
    """One forward pass over every group's beginning (left-padded); per layer its keys and
    values ``[groups, heads, longest, head_dim]``, layer after layer, keys first."""
    longest = max(g.length for g in groups)
    input_ids = torch.full((len(groups), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(groups), longest), dtype=torch.long)
    for i, g in enumerate(groups):
        input_ids[i, longest - g.length :] = torch.tensor(ids[g.rows[0]][: g.length])
        mask[i, longest - g.length :] = 1
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    out = model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    return tuple(t for layer in cache.layers for t in (layer.keys, layer.values))


def _expanded(
    model: torch.nn.Module,
    shared: tuple[torch.Tensor, ...],
    groups: Sequence[Group],
    rows: int,
) -> object:
    """A cache of ``rows`` rows: each grouped row holds its group's keys and values (the
    others zeros, masked out), through an index that gradients flow back along."""
    from transformers import DynamicCache

    pick = torch.full((rows,), len(groups), dtype=torch.long)
    for i, g in enumerate(groups):
        for row in g.rows:
            pick[row] = i
    pick = pick.to(shared[0].device)
    cache = DynamicCache(config=unwrapped(model).config)
    for layer in range(len(shared) // 2):
        keys, values = shared[2 * layer], shared[2 * layer + 1]
        zero = keys.new_zeros((1, *keys.shape[1:]))
        cache.update(
            torch.cat([keys, zero])[pick], torch.cat([values, zero])[pick], layer_idx=layer
        )
    return cache


def can_share(model: torch.nn.Module) -> bool:
    """Whether rows of ``model`` may take a shared beginning's keys and values: a plain
    full-attention cache on every layer, and one process (data-parallel wrappers and FSDP2
    expect one forward pass per backward), and no training forward through checkpointed
    layers (transformers drops the cache there: their rows are fed whole)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return False
    if model.training and torch.is_grad_enabled() and recomputes_activations(model):
        return False
    return PrefixCache.supports(unwrapped(model))
