"""Key-value reuse across turns generates what a full prefill generates."""

from __future__ import annotations

import pytest
import torch

from mmopsd.engines.hf import HFEngine
from mmopsd.engines.prefix_cache import GrowingLayer, PrefixCache, groups
from mmopsd.testing import tiny_text_policy
from mmopsd.types import Encoded


@pytest.fixture(scope="module")
def policy():
    return tiny_text_policy(seed=3)


def _prompts(policy, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    vocab = policy.model.config.vocab_size
    return [Encoded(ids=torch.randint(5, vocab, (n,), generator=g).tolist()) for n in lengths]


def test_a_continued_prompt_reuses_its_rows_and_generates_the_same(policy):
    cache = PrefixCache()
    first = _prompts(policy, (7, 12, 4))
    turn1 = policy.sample(first, max_new_tokens=5, greedy=True, prefix_cache=cache)
    assert [g.ids for g in turn1] == [g.ids for g in policy.sample(first, max_new_tokens=5,
                                                                    greedy=True)]  # fmt: skip
    extra = _prompts(policy, (3, 9, 1), seed=1)
    second = [Encoded(ids=p.ids + g.ids + e.ids) for p, g, e in zip(first, turn1, extra)]
    reused = policy.sample(second, max_new_tokens=6, greedy=True, prefix_cache=cache,
                           logprobs=True)  # fmt: skip
    full = policy.sample(second, max_new_tokens=6, greedy=True, logprobs=True)
    assert [g.ids for g in reused] == [g.ids for g in full]
    worst = max(abs(a - b) for g, h in zip(reused, full) for a, b in zip(g.logprobs, h.logprobs))
    assert worst < 1e-4
    assert cache.reused_tokens >= sum(len(p) for p in first)  # every first prompt was reused


def test_rows_are_forgotten_when_the_weights_change(policy):
    cache = PrefixCache()
    first = _prompts(policy, (6,))
    out = policy.sample(first, max_new_tokens=3, greedy=True, prefix_cache=cache)
    assert cache.rows
    with torch.no_grad():
        next(policy.model.parameters()).add_(0.0)  # an in-place update, as an optimizer step
    longer = [Encoded(ids=first[0].ids + out[0].ids + [7, 8])]
    before = cache.reused_tokens
    policy.sample(longer, max_new_tokens=3, greedy=True, prefix_cache=cache)
    assert cache.reused_tokens == before  # nothing reused from the old weights


def test_rows_beyond_the_memory_bound_are_dropped_oldest_first(policy):
    cache = PrefixCache(max_bytes=1)
    policy.sample(_prompts(policy, (5, 6)), max_new_tokens=2, greedy=True, prefix_cache=cache)
    assert not cache.rows


def test_the_engine_reuses_for_text_models_and_forgets_on_sync(policy):
    engine = HFEngine(policy)
    assert engine.prefix_cache is not None
    engine.generate(_prompts(policy, (5,)), max_new_tokens=2, greedy=True)
    assert engine.prefix_cache.rows
    engine.sync(policy.model)
    assert not engine.prefix_cache.rows
    assert HFEngine(policy, reuse_prefix=False).prefix_cache is None


def test_temperature_zero_decodes_greedily(policy):
    prompts = _prompts(policy, (5, 8))
    zero = policy.sample(prompts, max_new_tokens=4, temperature=0.0)
    greedy = policy.sample(prompts, max_new_tokens=4, greedy=True)
    assert [g.ids for g in zero] == [g.ids for g in greedy]


def test_prompts_of_unequal_lengths_are_fed_in_groups_and_repeats_once(policy):
    cache = PrefixCache(ragged=True)
    fed = []
    real = PrefixCache._feed

    def feed(self, model, items):
        fed.append([len(head) - c for head, (_, c) in items])
        return real(self, model, items)

    prompts = _prompts(policy, (3, 4, 90, 5))
    prompts.insert(1, prompts[0])  # the same prompt twice, as a group of samples
    PrefixCache._feed = feed
    try:
        out = policy.sample(prompts, max_new_tokens=4, greedy=True, prefix_cache=cache,
                            logprobs=True)  # fmt: skip
    finally:
        PrefixCache._feed = real
    full = policy.sample(prompts, max_new_tokens=4, greedy=True, logprobs=True)
    assert [g.ids for g in out] == [g.ids for g in full]
    assert max(abs(a - b) for g, h in zip(out, full) for a, b in zip(g.logprobs, h.logprobs)) < 1e-4
    assert sorted(n for group in fed for n in group) == [2, 3, 4, 89]  # the repeat fed once
    assert [89] in fed  # the long prompt alone: the short ones are not padded to its length


def test_groups_pay_for_padding_against_a_forward_pass():
    assert groups([1, 1, 2, 100], overhead=64) == [[0, 1, 2], [3]]
    assert groups([10, 10, 10], overhead=64) == [[0, 1, 2]]
    assert groups([5, 6], overhead=0) == [[0], [1]]
    assert groups([]) == []


def test_a_growing_layer_returns_what_concatenation_returns():
    keys, values = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    room = torch.zeros(2, 3, 6, 4), torch.zeros(2, 3, 6, 4)
    room[0][:, :, :5], room[1][:, :, :5] = keys, values
    layer = GrowingLayer(*room, length=5)
    for n in (1, 3, 2):  # the second update outgrows the room
        k, v = torch.randn(2, 3, n, 4), torch.randn(2, 3, n, 4)
        keys, values = torch.cat([keys, k], -2), torch.cat([values, v], -2)
        got = layer.update(k, v)
        assert torch.equal(got[0], keys) and torch.equal(got[1], values)
    assert layer.get_seq_length() == 11
    layer.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.update(k[1:], v[1:])[0], torch.cat([keys[1:], k[1:]], -2))
