"""Tiny random models built from config, for tests and examples that must not download.

``tiny_tokenizer()`` trains a small byte-level BPE in memory; ``tiny_text_policy()`` and
``tiny_vl_policy(kind)`` wrap random-init Llama and Qwen2-VL / Qwen2.5-VL / Qwen3-VL models.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from mmopsd.engines.base import Generation
from mmopsd.policies.processors import image_only_processor
from mmopsd.policies.text import TextPolicy
from mmopsd.policies.vision import VisionLanguagePolicy

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VISION = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "You hold a red key. There are doors: blue, green, red, yellow. Which door do you open?",
    "open the blue door. open the green door. Here is a hint: the red key opens the blue door.",
    "What colour is the square in the image? The answer is red, green, blue or yellow.",
    "system user assistant The quick brown fox jumps over the lazy dog 0123456789.",
]


@cache
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL + VISION,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    return tok.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A ~400-token byte-level BPE with ChatML and Qwen vision special tokens."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
        additional_special_tokens=VISION,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _text_dims(vocab: int) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )


def tiny_text_policy(seed: int = 0) -> TextPolicy:
    """A random 2-layer Llama (hidden 64) with :func:`tiny_tokenizer`."""
    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        **_text_dims(len(tok)),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    return TextPolicy(LlamaForCausalLM(config).eval(), tok)


VLKind = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]


def tiny_vl_policy(
    kind: VLKind = "qwen2_5_vl", seed: int = 0, **policy_kwargs
) -> VisionLanguagePolicy:
    """A random Qwen-VL model (2 text layers, 2 vision layers) with an image-only processor.

    Args:
        kind: ``qwen2_vl``, ``qwen2_5_vl`` or ``qwen3_vl``.
        seed: initialisation seed.
        **policy_kwargs: passed to :class:`VisionLanguagePolicy` (e.g. ``max_pixels``).
    """
    import transformers as tf

    tok = tiny_tokenizer()
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }
    text = {
        **_text_dims(len(tok)),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    patch = 16 if kind == "qwen3_vl" else 14
    vision: dict = dict(
        depth=2, hidden_size=64, num_heads=2, patch_size=patch, spatial_merge_size=2
    )
    vision.update(temporal_patch_size=2, in_channels=3)
    cfg_cls, model_cls, proc_cls = _vl_kind(kind, text, vision)
    torch.manual_seed(seed)
    config = cfg_cls(text_config=text, vision_config=vision, **ids)
    config.tie_word_embeddings = False
    model = model_cls(config).eval()
    image_processor = tf.Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=4 * (2 * patch) ** 2,
        max_pixels=64 * (2 * patch) ** 2,
    )
    processor = image_only_processor(proc_cls, image_processor, tok, CHAT_TEMPLATE)
    return VisionLanguagePolicy(model, processor, **policy_kwargs)


def _vl_kind(kind: str, text: dict, vision: dict) -> tuple[type, type, type]:
    """The config, model and processor classes of a tiny VL ``kind``; its own text and vision
    dimensions are added to ``text`` and ``vision``."""
    import transformers as tf

    if kind == "qwen2_vl":
        vision.update(embed_dim=32, mlp_ratio=2)
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 3, 3]}
        cfg_cls, model_cls, proc_cls = (
            tf.Qwen2VLConfig,
            tf.Qwen2VLForConditionalGeneration,
            tf.Qwen2VLProcessor,
        )
    elif kind == "qwen2_5_vl":
        vision.update(
            intermediate_size=128, out_hidden_size=64, window_size=56, fullatt_block_indexes=[1]
        )
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 3, 3]}
        cfg_cls, model_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration
        proc_cls = tf.Qwen2_5_VLProcessor
    elif kind == "qwen3_vl":
        vision.update(
            intermediate_size=128,
            out_hidden_size=64,
            num_position_embeddings=64,
            deepstack_visual_indexes=[1],
        )
        text.update(
            head_dim=16,
            rope_parameters={
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
        )
        cfg_cls, model_cls, proc_cls = (
            tf.Qwen3VLConfig,
            tf.Qwen3VLForConditionalGeneration,
            tf.Qwen3VLProcessor,
        )
    else:
        raise ValueError(f"unknown tiny VL kind {kind!r}; use qwen2_vl, qwen2_5_vl or qwen3_vl")
    return cfg_cls, model_cls, proc_cls


class ScriptedPolicy(TextPolicy):
    """A text policy whose "generation" is scripted: ``answer(prompt_text)`` gives the
    response text, tokenized and closed with end-of-sequence (unless ``close`` is False).
    Scoring still runs the real model. For tests of rollouts and environments.
    """

    def __init__(self, base: TextPolicy, answer, *, close: bool = True) -> None:
        super().__init__(base.model, base.tokenizer)
        self.answer = answer
        self.close = close

    def sample(self, prompts, **_: object) -> list[Generation]:  # type: ignore[override]
        """The scripted responses, as exact ids."""
        out = []
        for p in prompts:
            text = self.answer(self.tokenizer.decode(p.ids))
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Generation(list(ids) + ([self.eos_id] if self.close else [])))
        return out
