"""Key-value reuse across turns generates what a full prefill generates."""

from __future__ import annotations

import pytest
import torch

from mmopsd.engines.hf import HFEngine
from mmopsd.engines.prefix_cache import PrefixCache
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
