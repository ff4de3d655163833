"""A served model as a policy: prompts are built exactly as for a local model with the served
model's tokenizer, and responses come from an OpenAI-compatible server
(:class:`mmopsd.engines.OpenAIEngine`). It acts and evaluates; it cannot be trained or score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from mmopsd.engines.base import Generation
from mmopsd.engines.served import OpenAIEngine
from mmopsd.errors import ModelNotFoundError
from mmopsd.policies.base import Scored
from mmopsd.policies.text import TextPolicy
from mmopsd.types import Encoded, Message


class ServedPolicy(TextPolicy):
    """A policy whose responses come from a server.

    Args:
        engine: the server's engine.
        tokenizer: the served model's tokenizer, with its chat template.
        chat: send chat messages (``/v1/chat/completions``; the server applies its own
            template, images go as PNG data URLs) instead of exact prompt ids
            (``/v1/completions``). Vision models need it; answers are then tokenized text.
    """

    def __init__(self, engine: OpenAIEngine, tokenizer: Any, *, chat: bool = False) -> None:
        super().__init__(model=None, tokenizer=tokenizer)  # type: ignore[arg-type]
        self.engine = engine
        self.chat = chat
        engine.chat_mode = chat
        self.sees_images = chat  # observations keep their images only through chat

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        """The chat-template text; in chat mode images are left out of it (the prompt ids
        are then a record of the text only: the server renders the images itself)."""
        if self.chat:
            messages = [Message(m.role, m.text) for m in messages]
        return super().render(messages, add_generation_prompt=add_generation_prompt)

    def tokenize(self, text: str, images: Sequence[Image.Image] = ()) -> Encoded:
        """Token ids of ``text`` (images travel in the chat messages, not in ids)."""
        return super().tokenize(text, () if self.chat else images)

    def default_engine(self) -> OpenAIEngine:
        """The server: every rollout and evaluation of this policy samples there."""
        return self.engine

    def sample(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        logprobs: bool = False,
    ) -> list[Generation]:
        """The server's completions of the exact prompt ids, up to and including the
        end-of-sequence id (``logprobs`` as the server returns them)."""
        if self.chat:
            raise TypeError("a chat-mode served policy answers conversations: sample via a rollout")
        out = self.engine.generate(
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            greedy=greedy,
        )
        return [Generation(self.cut_at_eos(g.ids), g.logprobs, g.exact) for g in out]

    def score(self, prompts: Sequence[Encoded], responses: Sequence[Sequence[int]]) -> Scored:
        """Not available: a served model gives no logits to train on."""
        raise TypeError(
            "a served model cannot score responses; train a local model (--model without "
            "--base-url) and use the server for rollouts or evaluation"
        )


def load_served_policy(
    base_url: str,
    model: str,
    *,
    tokenizer: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 16,
    timeout: float = 120.0,
    max_retries: int = 4,
    chat: bool = False,
) -> ServedPolicy:
    """Connect to ``model`` at ``base_url``; the server is checked before anything runs.

    Args:
        tokenizer: a packaged alias, local directory or cached hub id holding the served
            model's tokenizer and chat template (default: ``model`` itself, when it names one).
        chat: send chat messages, images as data URLs (see :class:`ServedPolicy`).
    """
    from transformers import AutoTokenizer

    from mmopsd.policies.loading import resolve_model_path

    name = tokenizer or model
    try:
        where = resolve_model_path(name)
        tok = AutoTokenizer.from_pretrained(where, local_files_only=True)
    except (ModelNotFoundError, OSError) as err:
        raise ModelNotFoundError(
            f"no local tokenizer for the served model ({name!r}): pass --tokenizer with a "
            "packaged alias, a local directory or a cached hub id holding the served model's "
            f"tokenizer and chat template ({' '.join(str(err).split())})"
        ) from err
    if tok.eos_token_id is None:
        raise ModelNotFoundError(f"the tokenizer of {name!r} has no eos_token_id")
    engine = OpenAIEngine(
        base_url,
        model,
        tok,
        int(tok.eos_token_id),
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries,
    )
    engine.check()
    return ServedPolicy(engine, tok, chat=chat)
