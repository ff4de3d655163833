"""Every loss and option against a brute-force float64 reference written token by token."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import mmopsd.losses as L
from mmopsd.errors import UnknownNameError

B, T, V = 3, 5, 13


# ----------------------------------------------------------------- brute-force reference
def _dist(logits: list[float], support: list[int], tail: bool) -> list[float]:
    """Probabilities over ``support`` (+ tail bucket) of one logit vector, by hand."""
    z = sum(math.exp(x) for x in logits)
    full = [math.exp(x) / z for x in logits]
    if tail:
        inside = [full[i] for i in support]
        return [*inside, max(0.0, 1.0 - sum(inside))]
    zs = sum(math.exp(logits[i]) for i in support)
    return [math.exp(logits[i]) / zs for i in support]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


def _div(name: str, s: list[float], t: list[float], beta: float) -> float:
    if name == "forward_kl" or (name == "jsd" and beta == 0):
        return _kl(t, s)
    if name == "reverse_kl" or (name == "jsd" and beta == 1):
        return _kl(s, t)
    m = [beta * ti + (1 - beta) * si for si, ti in zip(s, t)]
    return beta * _kl(t, m) + (1 - beta) * _kl(s, m)


def _support(s: list[float], t: list[float], k: int | None, frm: str) -> list[int]:
    if k is None:
        return list(range(len(s)))
    top = lambda x: sorted(range(len(x)), key=lambda i: -x[i])[:k]  # noqa: E731
    return {"teacher": top(t), "student": top(s), "union": sorted(set(top(t)) | set(top(s)))}[frm]


def _token(name, s, t, *, beta=0.5, top_k=None, top_k_from="teacher", tail=False, clip=None):
    sup = _support(s, t, top_k, top_k_from)
    tail = tail and len(sup) < len(s)
    v = _div(name, _dist(s, sup, tail), _dist(t, sup, tail), beta)
    return min(v, clip) if clip is not None else v


def _reduce(vals, mask, weights, reduction):
    per_seq = []
    num_all = den_all = 0.0
    for b in range(len(vals)):
        num = sum(vals[b][j] * weights[b][j] for j in range(len(vals[b])) if mask[b][j])
        den = sum(weights[b][j] for j in range(len(vals[b])) if mask[b][j])
        num_all, den_all = num_all + num, den_all + den
        if den > 0:
            per_seq.append(num / den)
    if reduction == "sum":
        return num_all
    if reduction == "token_mean":
        return num_all / den_all
    return sum(per_seq) / len(per_seq)


def reference(name, s, t, mask, weights=None, reduction="token_mean", **opts) -> float:
    weights = weights if weights is not None else torch.ones_like(mask, dtype=torch.float64)
    vals = [
        [
            _token(name, s[b, j].tolist(), t[b, j].tolist(), **opts) if mask[b, j] else 0.0
            for j in range(s.shape[1])
        ]
        for b in range(s.shape[0])
    ]
    return _reduce(vals, mask.tolist(), weights.tolist(), reduction)


def numeric_grad(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central finite differences of a float64 scalar function (the reference has no autograd)."""
    g = torch.zeros_like(x)
    flat, gflat = x.view(-1), g.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        hi = fn(x)
        flat[i] = old - eps
        lo = fn(x)
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    t = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 3:] = 0  # right padding
    mask[1, :2] = 0  # prompt positions
    w = torch.rand(B, T, generator=g, dtype=torch.float64) + 0.1
    return s, t, mask, w


CASES = [
    dict(),
    dict(top_k=4, top_k_from="teacher"),
    dict(top_k=4, top_k_from="student"),
    dict(top_k=4, top_k_from="union"),
    dict(top_k=4, top_k_from="teacher", tail=True),
    dict(top_k=3, top_k_from="student", tail=True),
    dict(top_k=3, top_k_from="union", tail=True),
    dict(clip=0.8),
]


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "jsd"])
@pytest.mark.parametrize(
    "opts", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "full"
)
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
def test_closed_form_value_and_grad(batch, name, opts, reduction):
    s, t, mask, w = batch
    extra = {"beta": 0.3} if name == "jsd" else {}
    ref = reference(name, s, t, mask, w, reduction, **opts, **extra)
    for chunk in (None, 4):
        x = s.clone().requires_grad_(True)
        val = L.get(name)(
            x, t, mask, weights=w, reduction=reduction, chunk_size=chunk, **opts, **extra
        )
        val.backward()
        # float64 throughout; the gradient reference is a central difference with step 1e-6,
        # whose truncation and rounding error (~1e-10 / 1e-6) sets the 1e-5 tolerances.
        assert val.item() == pytest.approx(ref, abs=1e-5, rel=1e-5)
        if chunk is None:
            ref_grad = numeric_grad(
                lambda z: reference(name, z, t, mask, w, reduction, **opts, **extra), s.clone()
            )
        torch.testing.assert_close(x.grad, ref_grad, atol=1e-5, rtol=1e-4)


def test_float32_inputs_match_reference(batch):
    s, t, mask, _ = batch
    val = L.get("forward_kl")(s.float(), t.float(), mask)
    # float32 against the float64 reference: float32's epsilon (1.2e-7) times the size of the
    # sums (V = 13 terms of logits up to ~10, then a mean over 13 tokens) stays below 1e-5 in
    # any summation order.
    assert val.item() == pytest.approx(reference("forward_kl", s, t, mask), abs=1e-5)


def test_jsd_endpoints_are_the_plain_kls(batch):
    s, t, mask, _ = batch
    jsd = L.get("jsd")
    assert jsd(s, t, mask, beta=0.0).item() == pytest.approx(
        L.get("forward_kl")(s, t, mask).item(), abs=1e-12
    )
    assert jsd(s, t, mask, beta=1.0).item() == pytest.approx(
        L.get("reverse_kl")(s, t, mask).item(), abs=1e-12
    )
    # The mixture form itself vanishes towards both ends: the documented jump.
    assert jsd(s, t, mask, beta=1e-6).item() < 1e-4
    assert jsd(s, t, mask, beta=1 - 1e-6).item() < 1e-4
    with pytest.raises(ValueError, match="beta"):
        jsd(s, t, mask, beta=1.5)


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "jsd", "sampled_reverse_kl"])
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
def test_padding_and_masked_positions_never_change_the_value(batch, name, reduction):
    s, t, mask, w = batch
    ids = torch.randint(0, V, (B, T))
    kw = {"response_ids": ids} if name == "sampled_reverse_kl" else {}
    base_x = s.clone().requires_grad_(True)
    base = L.get(name)(base_x, t, mask, weights=w, reduction=reduction, **kw)
    base.backward()
    # Extra padded positions, an all-padding sequence, garbage at masked places.
    pad = 4
    s2 = torch.cat([s, torch.randn(B, pad, V, dtype=s.dtype) * 50], 1)
    s2 = torch.cat([s2, torch.randn(1, T + pad, V, dtype=s.dtype)], 0)
    t2 = torch.cat([t, torch.randn(B, pad, V, dtype=t.dtype) * 50], 1)
    t2 = torch.cat([t2, torch.randn(1, T + pad, V, dtype=t.dtype)], 0)
    s2[mask.eq(0).nonzero(as_tuple=True)] = 1e3
    m2 = torch.zeros(B + 1, T + pad, dtype=torch.long)
    m2[:B, :T] = mask
    w2 = torch.rand(B + 1, T + pad, dtype=w.dtype)
    w2[:B, :T] = w
    ids2 = torch.randint(0, V, (B + 1, T + pad))
    ids2[:B, :T] = ids
    kw2 = {"response_ids": ids2} if name == "sampled_reverse_kl" else {}
    x2 = s2.clone().requires_grad_(True)
    val = L.get(name)(x2, t2, m2, weights=w2, reduction=reduction, **kw2)
    val.backward()
    assert val.item() == pytest.approx(base.item(), abs=1e-10)
    torch.testing.assert_close(x2.grad[:B, :T] * mask[..., None], base_x.grad * mask[..., None])
    assert x2.grad[m2 == 0].abs().max().item() == 0.0


# ------------------------------------------------------------------------- sampled form
def _sampled_reference(s, t, mask, ids, baseline, old, clip):
    """Surrogate value -sum adv*logS(y)/N by hand; its gradient is adv * dlogS(y)."""
    total, n = 0.0, 0
    for b, j in itertools.product(range(s.shape[0]), range(s.shape[1])):
        if not mask[b, j]:
            continue
        sp, tp = (
            _dist(s[b, j].tolist(), list(range(V)), False),
            _dist(t[b, j].tolist(), list(range(V)), False),
        )
        y = int(ids[b, j])
        adv = math.log(tp[y]) - math.log(sp[y])
        if baseline:
            adv += _kl(sp, tp)
        if clip is not None:
            adv = max(-clip, min(clip, adv))
        if old is not None:
            adv *= min(math.exp(max(-20, min(20, math.log(sp[y]) - old[b, j].item()))), 2.0)
        total += -adv * math.log(sp[y])
        n += 1
    return total / n


def _sampled_reference_grad(s, t, mask, ids, baseline, old, clip):
    """d/ds of the surrogate with the advantage held fixed: -adv/N * (onehot(y) - p)."""
    g = torch.zeros_like(s)
    n = int(mask.sum())
    for b, j in itertools.product(range(s.shape[0]), range(s.shape[1])):
        if not mask[b, j]:
            continue
        sp = torch.softmax(s[b, j], -1)
        tp = torch.softmax(t[b, j], -1)
        y = int(ids[b, j])
        adv = (tp[y].log() - sp[y].log()).item()
        if baseline:
            adv += (sp * (sp.log() - tp.log())).sum().item()
        if clip is not None:
            adv = max(-clip, min(clip, adv))
        if old is not None:
            adv *= min(math.exp(max(-20, min(20, sp[y].log().item() - old[b, j].item()))), 2.0)
        onehot = torch.zeros(V, dtype=s.dtype)
        onehot[y] = 1
        g[b, j] = -adv / n * (onehot - sp)
    return g


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("use_old", [False, True])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_sampled_reverse_kl_value_and_grad(batch, baseline, use_old, clip):
    s, t, mask, _ = batch
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(1))
    old = torch.log_softmax(s, -1).gather(-1, ids[..., None]).squeeze(-1) - 0.5 if use_old else None
    for chunk in (None, 4):
        x = s.clone().requires_grad_(True)
        val = L.get("sampled_reverse_kl")(
            x,
            t,
            mask,
            response_ids=ids,
            baseline=baseline,
            old_logprobs=old,
            clip=clip,
            chunk_size=chunk,
        )
        val.backward()
        assert val.item() == pytest.approx(
            _sampled_reference(s, t, mask, ids, baseline, old, clip), abs=1e-9
        )
        torch.testing.assert_close(
            x.grad, _sampled_reference_grad(s, t, mask, ids, baseline, old, clip)
        )


def test_sampled_gradient_is_reverse_kl_gradient_in_expectation():
    """Averaged over all tokens weighted by S, the surrogate's gradient is d KL(S||T)."""
    g = torch.Generator().manual_seed(3)
    s = torch.randn(1, 1, 7, generator=g, dtype=torch.float64)
    t = torch.randn(1, 1, 7, generator=g, dtype=torch.float64)
    p = torch.softmax(s, -1)[0, 0]
    expected = torch.zeros_like(s)
    for y in range(7):
        x = s.clone().requires_grad_(True)
        L.get("sampled_reverse_kl")(
            x, t, torch.ones(1, 1), response_ids=torch.tensor([[y]])
        ).backward()
        expected += p[y] * x.grad
    x = s.clone().requires_grad_(True)
    L.get("reverse_kl")(x, t, torch.ones(1, 1)).backward()
    torch.testing.assert_close(expected, x.grad)


# ----------------------------------------------------------------------------- weights
def test_position_weights_by_hand():
    mask = torch.tensor([[0, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]])
    w = L.position_weights(mask)
    torch.testing.assert_close(
        w, torch.tensor([[0, 0.25, 0.5, 0.75, 1.0, 0], [0.5, 1.0, 0, 0, 0, 0]])
    )
    w = L.position_weights(mask, floor=0.5, power=2.0)
    assert w[1].tolist() == pytest.approx([0.5 + 0.5 * 0.25, 1.0, 0, 0, 0, 0])


def test_tip_keeps_high_entropy_and_low_entropy_high_divergence_tokens():
    v = 6
    flat = torch.zeros(v)  # maximal entropy
    peaked = torch.tensor([8.0, 0, 0, 0, 0, 0])  # low entropy
    s = torch.stack([flat, peaked, peaked, peaked + 0.0, flat * 0 + peaked * 0.5, peaked])[None]
    t = torch.stack([flat, peaked, peaked.roll(1), peaked, peaked, peaked.roll(2) * 0.5])[None]
    mask = torch.ones(1, 6)
    w = L.tip_weights(mask, student_logits=s, teacher_logits=t, keep=0.5)
    # budget 3: the two highest-entropy tokens (0 and 4), then the low-entropy token with the
    # largest divergence from its teacher (2: teacher mass moved elsewhere).
    assert w.tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]
    assert L.tip_weights(mask, student_logits=s, teacher_logits=t, keep=1.0).sum() == 6


def test_weights_scale_tokens_as_a_weighted_mean(batch):
    s, t, mask, _ = batch
    w = torch.zeros(B, T, dtype=torch.float64)
    w[2, 1] = 1.0
    only = torch.zeros(B, T, dtype=torch.long)
    only[2, 1] = 1
    val = L.get("forward_kl")(s, t, mask, weights=w)
    assert val.item() == pytest.approx(L.get("forward_kl")(s, t, only).item())


# ------------------------------------------------------------------------------ errors
def test_unknown_loss_lists_known_names():
    with pytest.raises(UnknownNameError, match="unknown loss 'kl'.*forward_kl"):
        L.get("kl")


def test_wrong_mask_shape_is_named(batch):
    s, t, mask, _ = batch
    with pytest.raises(ValueError, match=r"mask shape \(3, 4\) must be \[B, T\] = \(3, 5\)"):
        L.get("forward_kl")(s, t, mask[:, :4])


def test_mismatched_logits_and_teacher_grad_are_rejected(batch):
    s, t, mask, _ = batch
    with pytest.raises(ValueError, match="identical response ids"):
        L.get("reverse_kl")(s, t[:, :4], mask)
    with pytest.raises(ValueError, match="no_grad"):
        L.get("reverse_kl")(s, t.clone().requires_grad_(True), mask)


def test_empty_mask_gives_zero_with_graph(batch):
    s, t, mask, _ = batch
    x = s.clone().requires_grad_(True)
    val = L.get("jsd")(x, t, torch.zeros_like(mask))
    val.backward()
    assert val.item() == 0.0 and x.grad.abs().sum() == 0
