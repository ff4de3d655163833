"""Turns scored inside a later turn's sequence: the same logits and gradient as turn by turn."""

from __future__ import annotations

import pytest
import torch
from mmopsd.agents.prompting import PromptSpec
from mmopsd.envs.keydoor import KeyDoorEnv

from mmopsd.errors import AlignmentError
from mmopsd.methods.terms import Divergence, KLPenalty, PolicyGradient
from mmopsd.methods.turn_plan import plan_turns
from mmopsd.policies import spans
from mmopsd.policies.spans import Group, shared_groups
from mmopsd.rollout import Sampling, rollout
from mmopsd.testing import tiny_text_policy
from mmopsd.training.distill import Objective, distill_backward
from mmopsd.training.nesting import families, sequence
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Encoded, user


def _episodes(policy, history):
    """Random-policy KeyDoor episodes (invalid answers keep them going for 4 turns)."""
    spec = PromptSpec(assistant_prefix="I open the", history=history)
    envs = [KeyDoorEnv(n_rooms=3) for _ in range(3)]
    sampling = Sampling(max_new_tokens=4)
    return rollout(policy, envs, [0, 1, 2], spec, sampling, max_turns=4)


def _policy():
    # float64: claims of sameness are not blurred by float32 summation order.
    policy = tiny_text_policy()
    policy.model.double()
    return policy


def test_full_history_turns_nest_in_the_last_and_a_window_breaks_the_chain():
    policy = _policy()
    full = plan_turns(_episodes(policy, None))
    assert any(len(f.members) > 1 for f in families(full))
    for f in families(full):
        root = sequence(full[f.root]).ids
        for i, start in f.members:  # each member's prompt and response, exactly, inside
            turn = full[i].turn
            assert root[: start + len(turn.response_ids)] == turn.prompt.ids + turn.response_ids
    assert sorted(i for f in families(full) for i, _ in f.members) == list(range(len(full)))
    assert all(len(f.members) == 1 for f in families(full, nest=False))
    # history 1: turn 2's prompt drops turn 0's exchange, so at most turns 0 and 1 share.
    windowed = plan_turns(_episodes(policy, 1))
    assert max(len(f.members) for f in families(windowed)) <= 2


def test_spans_inside_one_sequence_score_as_their_own_prompts():
    policy = _policy()
    seq = policy.encode([user("a b c d")])
    ids = [*seq.ids, 40, 41, 42, 43]
    short = policy.encode([user("e")])
    spans = [(0, 3, 2), (0, len(ids) - 2, 2), (1, len(short) - 1, 1)]
    got = policy.score_spans([Encoded(ids=ids), short], spans)
    rows = [(ids[:3], ids[3:5]), (ids[:-2], ids[-2:]), (short.ids[:-1], short.ids[-1:])]
    want = policy.score([Encoded(ids=p) for p, _ in rows], [r for _, r in rows])
    torch.testing.assert_close(got.logits * got.mask[..., None], want.logits * want.mask[..., None])
    assert torch.equal(got.ids * got.mask, want.ids * want.mask)
    assert torch.equal(got.mask, want.mask)
    with pytest.raises(AlignmentError, match="not inside"):
        policy.score_spans([short], [(0, 1, len(short))])


@pytest.mark.parametrize(("micro", "history"), [(1, None), (2, None), (8, None), (8, 1)])
def test_nested_scoring_gives_the_turn_by_turn_gradient(micro, history):
    policy = _policy()
    teacher = build_teacher("frozen", policy)
    samples = plan_turns(_episodes(policy, history), rl="add", turn_weighting="discount")
    teacher_prompts = [policy.encode([user(f"hint {i}")]) for i in range(len(samples))]
    spec = Objective(terms=(Divergence("forward_kl"), PolicyGradient(), KLPenalty(coef=0.1)))
    grads, totals = [], []
    for nest in (False, True):
        policy.model.zero_grad()
        totals.append(
            distill_backward(
                policy, teacher, samples, teacher_prompts, spec, micro_batch_size=micro, nest=nest
            )
        )
        grads.append(torch.cat([p.grad.flatten() for p in policy.model.parameters()]))
    assert grads[0].abs().max() > 1e-3
    # Llama's RMSNorm computes in float32 even in a float64 model, so gradients summed in
    # another order round differently there (~1e-8 of the largest); a wrong span moves them
    # by ~1e-3.
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-9)
    for key in ("loss", "rl_loss", "kl", "tokens"):
        assert totals[1][key] == pytest.approx(totals[0][key], rel=1e-9)


def test_rows_that_begin_alike_are_grouped_by_their_shared_beginning():
    a, b = list(range(100, 140)), list(range(200, 240))
    seqs = [[*a, 1, 2], [*b, 3], [*a, 5], [*a, 1, 7], [9, 9]]
    groups = shared_groups(seqs, [len(s) - 1 for s in seqs])
    assert [(sorted(g.rows), g.length) for g in groups] == [([0, 2, 3], 40)]
    limits = [len(s) - 1 for s in seqs]
    limits[2] = 35  # a span of row 2 starts at 36: its logits must come from the fed part
    assert [g.length for g in shared_groups(seqs, limits)] == [35]
    assert shared_groups(seqs, [len(s) - 1 for s in seqs], min_shared=41) == [Group((0, 3), 41)]


@pytest.mark.parametrize("per_row", [True, False])
def test_a_shared_beginning_is_fed_once_with_the_same_logits_and_gradient(per_row, monkeypatch):
    # per_row False: a model whose forward keeps only the same columns in every row.
    policy = _policy()
    monkeypatch.setitem(spans._PER_ROW, type(policy.model), per_row)
    long = "the task: " + " ".join(f"w{i}" for i in range(40))
    prompts = [policy.encode([user(long + tail)]) for tail in (" a", " b c", " d e f")]
    prompts.append(policy.encode([user("something else")]))
    responses = [[40, 41], [42], [43, 44, 45], [46]]
    calls = []
    hook = policy.model.register_forward_hook(lambda *_: calls.append(1))
    shared = policy.score(prompts, responses)
    hook.remove()
    assert len(calls) == 2  # the shared beginning, then the rest of every row
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(shared.logits.shape, dtype=shared.logits.dtype, generator=gen)
    (shared.logits * weights * shared.mask[..., None]).sum().backward()
    got = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    policy.model.zero_grad()
    total = 0.0
    for i, (p, r) in enumerate(zip(prompts, responses)):  # each row alone
        alone = policy.score([p], [r])
        n = len(r)
        torch.testing.assert_close(shared.logits[i, :n], alone.logits[0, :n], rtol=1e-9, atol=1e-9)
        total = total + (alone.logits[0, :n] * weights[i, :n]).sum()
    total.backward()
    want = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    # RMSNorm's float32 rounds sums taken in another order (~1e-8 of the largest gradient).
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-8 * float(want.abs().max()))
