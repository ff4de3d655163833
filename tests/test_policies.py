"""Policies: exact ids, batched scoring equal to scoring alone, images, clear errors."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from PIL import Image

from mmopsd.errors import AlignmentError
from mmopsd.policies import images as img_mod
from mmopsd.testing import tiny_text_policy, tiny_vl_policy
from mmopsd.types import user

VL_KINDS = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]


def _picture(w: int, h: int, seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    arr = (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(arr)


def _contexts(vision: bool):
    """Student prompts of different lengths; teacher prompts add privileged info (an image
    the student never sees, for VLMs)."""
    if vision:
        a, b, extra = _picture(90, 60, 1), _picture(40, 120, 2), _picture(70, 70, 3)
        student = [
            user(a, "What is shown?"),
            user("Describe the scene in a few words please."),
            user(b, "Hi"),
        ]
        teacher = [
            user(a, "What is shown?", extra, "Zoomed evidence above."),
            user(extra, "Describe the scene in a few words please."),
            user(b, "Hi", "Hint: the answer is red."),
        ]
    else:
        student = [user("You hold a red key."), user("Which door? blue or green"), user("Hi")]
        teacher = [user(m.text + " Hint: open the blue door.") for m in student]
    return student, teacher


def _policy(kind: str):
    return tiny_text_policy() if kind == "text" else tiny_vl_policy(kind)


def _reference_logits(policy, enc, response):
    """The model's own forward on one unpadded sequence, no mmopsd batching involved."""
    ids = torch.tensor([enc.ids + response])
    kwargs = {k: v for k, v in enc.mm.items()}
    if enc.token_types is not None:
        kwargs["mm_token_type_ids"] = torch.tensor([enc.token_types + [0] * len(response)])
    if hasattr(policy.model.model, "rope_deltas"):
        policy.model.model.rope_deltas = None  # no cached M-RoPE offsets from earlier calls
    with torch.no_grad():
        logits = policy.model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits
    p = len(enc.ids)
    return logits[0, p - 1 : p - 1 + len(response)]


@pytest.mark.parametrize("kind", ["text", *VL_KINDS])
def test_batched_padded_scoring_equals_scoring_alone(kind):
    # float64, so that padding and batching are compared without the float32 summation-order
    # noise that differs between CPU kernels; a masking error would still show as O(1).
    policy = _policy(kind)
    policy.model.double()
    student, teacher = _contexts(kind != "text")
    responses = [[40, 41, 42, 43, 44], [50], [60, 61, 62]]
    for contexts in (student, teacher):
        prompts = [policy.encode([m], assistant_prefix="open the") for m in contexts]
        with torch.no_grad():
            batched = policy.score(prompts, responses)
        assert batched.logits.shape[:2] == (3, 5)
        assert batched.mask.tolist() == [[1] * 5, [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]
        for i, (p, r) in enumerate(zip(prompts, responses)):
            with torch.no_grad():
                alone = policy.score([p], [r])
            torch.testing.assert_close(
                batched.logits[i, : len(r)], alone.logits[0], atol=1e-10, rtol=1e-9
            )
            torch.testing.assert_close(
                alone.logits[0], _reference_logits(policy, p, r), atol=1e-10, rtol=1e-9
            )
            assert batched.ids[i, : len(r)].tolist() == r
    # Teacher prompts really differ (extra image / hint), responses are the identical ids.
    s_len = [len(policy.encode([m])) for m in student]
    t_len = [len(policy.encode([m])) for m in teacher]
    assert all(t > s for s, t in zip(s_len, t_len))


@pytest.mark.parametrize("kind", ["text", "qwen2_5_vl"])
def test_generate_returns_exact_ids_cut_at_eos(kind):
    policy = _policy(kind)
    student, _ = _contexts(kind != "text")
    prompts = [policy.encode([m]) for m in student]
    torch.manual_seed(0)
    out = policy.generate(prompts, max_new_tokens=6, greedy=True)
    for ids, p in zip(out, prompts):
        assert 1 <= len(ids) <= 6
        assert policy.eos_id not in ids[:-1]
        alone = policy.generate([p], max_new_tokens=6, greedy=True)[0]
        assert alone == ids  # left padding changes nothing in greedy decoding


def test_sampling_is_reproducible_with_a_seed():
    policy = tiny_text_policy()
    prompts = [policy.encode([user("Which door?")])] * 4
    torch.manual_seed(5)
    a = policy.generate(prompts, max_new_tokens=8)
    torch.manual_seed(5)
    b = policy.generate(prompts, max_new_tokens=8)
    assert a == b and len({tuple(x) for x in a}) > 1


def test_response_with_vision_tokens_is_rejected():
    policy = tiny_vl_policy("qwen2_vl")
    image_pad = policy.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    prompt = policy.encode([user("Hi")])
    with pytest.raises(AlignmentError, match="vision special token"):
        policy.score([prompt], [[40, image_pad]])


def test_text_policy_rejects_images():
    policy = tiny_text_policy()
    with pytest.raises(TypeError, match="text-only model"):
        policy.encode([user(_picture(10, 10, 0), "what?")])


def test_wrong_image_type_is_named():
    with pytest.raises(TypeError, match="PIL.Image.Image"):
        user(torch.zeros(3, 4, 4), "what?")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PIL.Image.Image"):
        img_mod.load_image(123)  # type: ignore[arg-type]


@pytest.fixture
def qwen_vl_utils_with_stub(monkeypatch):
    """Import qwen_vl_utils with a throw-away torchvision stub (its image path needs only PIL)."""
    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.0.0"
    tv.io = types.ModuleType("torchvision.io")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.InterpolationMode = types.SimpleNamespace(BICUBIC=3)
    for name, mod in {
        "torchvision": tv,
        "torchvision.io": tv.io,
        "torchvision.transforms": tv.transforms,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    for name in [n for n in sys.modules if n.startswith("qwen_vl_utils")]:
        monkeypatch.delitem(sys.modules, name)
    img_mod._qwen_fetch_image.cache_clear()
    yield
    img_mod._qwen_fetch_image.cache_clear()


@pytest.mark.parametrize("size", [(90, 60), (1000, 37), (13, 13), (640, 480)])
def test_pil_path_gives_identical_pixels_to_qwen_vl_utils(qwen_vl_utils_with_stub, size):
    assert img_mod.qwen_vl_utils_available()
    image = _picture(*size, seed=sum(size))
    kw = dict(patch_size=14, merge_size=2, min_pixels=4 * 28 * 28, max_pixels=64 * 28 * 28)
    ours = img_mod.prepare_image(image, backend="pil", **kw)
    theirs = img_mod.prepare_image(image, backend="qwen_vl_utils", **kw)
    assert ours.size == theirs.size
    assert ours.size[0] % 28 == 0 and ours.size[1] % 28 == 0
    assert ours.tobytes() == theirs.tobytes()
    policy = tiny_vl_policy("qwen2_5_vl")
    a = policy.processor.image_processor(images=[ours], return_tensors="pt")["pixel_values"]
    b = policy.processor.image_processor(images=[theirs], return_tensors="pt")["pixel_values"]
    assert torch.equal(a, b)


@pytest.mark.parametrize("kind", VL_KINDS)
def test_load_policy_reads_a_saved_qwen_vl_directory(tmp_path, kind):
    """A model directory loads through transformers' auto classes (with the image-only
    processor fallback where the video processor cannot be built) and scores identically."""
    from mmopsd.policies import load_policy

    policy = tiny_vl_policy(kind)
    policy.model.save_pretrained(tmp_path)
    policy.tokenizer.save_pretrained(tmp_path)
    policy.processor.image_processor.save_pretrained(tmp_path)
    loaded = load_policy(str(tmp_path), dtype="float32", device="cpu")
    messages = [user(_picture(60, 40, 9), "what?")]
    a, b = policy.encode(messages), loaded.encode(messages)
    assert a.ids == b.ids and torch.equal(a.mm["pixel_values"], b.mm["pixel_values"])
    with torch.no_grad():
        torch.testing.assert_close(
            policy.score([a], [[40, 41]]).logits, loaded.score([b], [[40, 41]]).logits
        )


def test_load_policy_reads_a_saved_text_model(tmp_path):
    from mmopsd.policies import TextPolicy, load_policy

    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path)
    policy.tokenizer.save_pretrained(tmp_path)
    loaded = load_policy(str(tmp_path), dtype="bfloat16", device="cpu")
    assert isinstance(loaded, TextPolicy) and loaded.model.dtype == torch.bfloat16
    prompt = loaded.encode([user("Hi")])
    scored = loaded.score([prompt], [[40, 41]])
    assert scored.logits.shape[:2] == (1, 2) and torch.isfinite(scored.logits.float()).all()
