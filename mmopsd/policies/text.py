"""Policy over any Hugging Face causal language model with a chat template."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from mmopsd.policies.base import Policy
from mmopsd.types import Encoded, Message


class TextPolicy(Policy):
    """A text-only policy: ``AutoModelForCausalLM`` plus its tokenizer."""

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        """The chat-template text (text-only messages)."""
        for m in messages:
            if m.images:
                raise TypeError(
                    "this is a text-only model but a message holds images; load a Qwen-VL "
                    "model (e.g. Qwen/Qwen2.5-VL-3B-Instruct) for image inputs"
                )
        chat = [{"role": m.role, "content": m.text} for m in messages]
        return self.tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            chat, add_generation_prompt=add_generation_prompt, tokenize=False
        )

    def tokenize(self, text: str, images: Sequence[Image.Image] = ()) -> Encoded:
        """Token ids of ``text`` (special tokens in the text are honoured)."""
        if images:
            raise TypeError("a text-only model cannot take images")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        return Encoded(ids=list(ids))
