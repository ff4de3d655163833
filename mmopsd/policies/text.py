"""Policy over any Hugging Face causal language model with a chat template."""

from __future__ import annotations

from collections.abc import Sequence

from mmopsd.policies.base import Policy
from mmopsd.types import Encoded, Message


class TextPolicy(Policy):
    """A text-only policy: ``AutoModelForCausalLM`` plus its tokenizer."""

    def encode(self, messages: Sequence[Message], *, assistant_prefix: str = "") -> Encoded:
        """Chat-template the messages, add the generation prompt and ``assistant_prefix``."""
        for m in messages:
            if m.images:
                raise TypeError(
                    "this is a text-only model but a message holds images; load a Qwen-VL "
                    "model (e.g. Qwen/Qwen2.5-VL-3B-Instruct) for image inputs"
                )
        chat = [{"role": m.role, "content": m.text} for m in messages]
        text = self.tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            chat, add_generation_prompt=True, tokenize=False
        )
        ids = self.tokenizer(text + assistant_prefix, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        return Encoded(ids=list(ids))
