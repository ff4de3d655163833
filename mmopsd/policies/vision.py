"""Policy over Qwen2-VL, Qwen2.5-VL and Qwen3-VL through their processors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from mmopsd.policies.base import Policy
from mmopsd.policies.images import prepare_image
from mmopsd.types import Encoded, Message

VISION_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


class VisionLanguagePolicy(Policy):
    """A Qwen-VL policy. Each side's M-RoPE positions come from the model's own
    ``get_rope_index``, computed for the exact padded batch being scored.

    Args:
        model: a Qwen-VL ``ForConditionalGeneration`` model.
        processor: its processor (image processor + tokenizer + chat template).
        min_pixels: lower pixel bound for images (default: the image processor's).
        max_pixels: upper pixel bound for images (default: the image processor's).
        image_backend: ``auto``, ``qwen_vl_utils`` or ``pil`` (see :func:`prepare_image`).
    """

    sees_images = True

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        *,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_backend: str = "auto",
    ) -> None:
        super().__init__(model, processor.tokenizer)
        self.processor = processor
        ip = processor.image_processor
        size = getattr(ip, "size", None) or {}
        self.min_pixels = min_pixels or size.get("shortest_edge") or getattr(ip, "min_pixels", None)
        self.max_pixels = max_pixels or size.get("longest_edge") or getattr(ip, "max_pixels", None)
        self.patch_size = int(ip.patch_size)
        self.merge_size = int(ip.merge_size)
        self.image_backend = image_backend

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        """Chat-template text with one placeholder per image."""
        chat = [m.to_template() for m in messages]
        return self.processor.apply_chat_template(
            chat, add_generation_prompt=add_generation_prompt, tokenize=False
        )

    def tokenize(self, text: str, images: Sequence[Image.Image] = ()) -> Encoded:
        """Ids with image placeholders expanded by the processor, plus pixel tensors."""
        prepared = [
            prepare_image(
                img,
                patch_size=self.patch_size,
                merge_size=self.merge_size,
                min_pixels=self.min_pixels,
                max_pixels=self.max_pixels,
                backend=self.image_backend,
            )
            for img in images
        ]
        out = self.processor(text=[text], images=prepared or None, return_tensors="pt")
        ids = out["input_ids"][0].tolist()
        types = out.get("mm_token_type_ids")
        mm = {k: out[k] for k in ("pixel_values", "image_grid_thw") if k in out}
        return Encoded(
            ids=ids,
            mm=mm,
            token_types=types[0].tolist() if types is not None else [0] * len(ids),
            images=prepared,
        )

    def forbidden_response_ids(self) -> set[int]:
        """Image/video placeholders and vision start/end markers."""
        cfg = self.model.config
        names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        return {int(v) for n in names if (v := getattr(cfg, n, None)) is not None}

    def _collate_mm(
        self, prompts: Sequence[Encoded], types: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"mm_token_type_ids": types}
        for key in ("pixel_values", "image_grid_thw"):
            parts = [p.mm[key] for p in prompts if key in p.mm]
            if parts:
                out[key] = torch.cat(parts).to(self.device)
        if "pixel_values" in out:
            out["pixel_values"] = out["pixel_values"].to(self.model.dtype)
        return out

    def _position_ids(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        core = _unwrap(self.model).model
        positions, _ = core.get_rope_index(
            batch["input_ids"],
            mm_token_type_ids=batch["mm_token_type_ids"],
            image_grid_thw=batch.get("image_grid_thw"),
            attention_mask=batch["attention_mask"],
        )
        return positions


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under a peft wrapper, if any."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def vision_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The vision tower's parameters (names containing ``visual``), empty for text models."""
    return [(n, p) for n, p in model.named_parameters() if ".visual." in f".{n}"]


def freeze_vision_tower(model: torch.nn.Module) -> int:
    """Stop gradients to the vision tower; returns how many tensors were frozen. A text-only
    model has none, which is an error (the option would silently do nothing)."""
    params = vision_parameters(model)
    if not params:
        raise ValueError("freeze_vision is set, but the model has no vision tower (no 'visual')")
    for _, p in params:
        p.requires_grad_(False)
    return len(params)
