"""Turns scored inside a later turn's sequence: the same logits and gradient as turn by turn."""

from __future__ import annotations

import pytest
import torch
from mmopsd.agents.prompting import PromptSpec
from mmopsd.envs.keydoor import KeyDoorEnv

from mmopsd import losses
from mmopsd.errors import AlignmentError
from mmopsd.rollout import Sampling, rollout
from mmopsd.testing import tiny_text_policy
from mmopsd.training.distill import LossSpec, distill_backward
from mmopsd.training.nesting import families, sequence
from mmopsd.training.teachers import build_teacher
from mmopsd.training.turn_plan import plan_turns
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


@pytest.mark.parametrize("micro", [1, 2, 8])
def test_nested_scoring_gives_the_turn_by_turn_gradient(micro):
    policy = _policy()
    teacher = build_teacher("frozen", policy)
    samples = plan_turns(_episodes(policy, None), rl="add", turn_weighting="discount")
    teacher_prompts = [policy.encode([user(f"hint {i}")]) for i in range(len(samples))]
    spec = LossSpec(fn=losses.get("forward_kl"), kl_coef=0.1)
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
