"""The policy: one model that samples responses and scores given response ids.

Alignment rule (see the methods notes): teacher and student score the *identical* response ids
appended to their own prompts. A batch is laid out as ``[left-padded prompt | right-padded
response]``, so the logits predicting response token j sit at position ``P - 1 + j`` for every
row (P = the longest prompt). Position ids come from the attention mask (text) or from the
model's own rope-index routine (Qwen-VL M-RoPE), so padding never moves a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from mmopsd.errors import AlignmentError
from mmopsd.types import Encoded, Message


@dataclass
class Scored:
    """Logits of response tokens.

    Attributes:
        logits: ``[B, R, V]``; ``logits[i, j]`` predicts ``ids[i, j]``.
        mask: ``[B, R]`` 1 where row i has a j-th response token.
        ids: ``[B, R]`` the response ids (padding where mask is 0).
    """

    logits: torch.Tensor
    mask: torch.Tensor
    ids: torch.Tensor


class Policy:
    """Shared sampling and scoring over a Hugging Face model.

    Subclasses implement :meth:`encode` (messages -> :class:`Encoded`) and may override
    :meth:`_position_ids` and :meth:`forbidden_response_ids`.

    Args:
        model: a causal LM or Qwen-VL ``ForConditionalGeneration`` model.
        tokenizer: its tokenizer (``eos_token_id`` and a pad id are required).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: object) -> None:
        self.model = model
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
        if eos is None:
            raise ValueError("the tokenizer has no eos_token_id; set one before building a Policy")
        self.eos_id: int = int(eos)
        pad = tokenizer.pad_token_id  # type: ignore[attr-defined]
        self.pad_id: int = int(pad) if pad is not None else self.eos_id

    # ------------------------------------------------------------------ to implement
    def encode(self, messages: Sequence[Message], *, assistant_prefix: str = "") -> Encoded:
        """Render ``messages`` with the chat template, add the generation prompt and
        ``assistant_prefix``, and tokenize."""
        raise NotImplementedError

    def forbidden_response_ids(self) -> set[int]:
        """Token ids that may never appear in a response (vision placeholders)."""
        return set()

    # ---------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``ids``."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)  # type: ignore[attr-defined]

    # --------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
    ) -> list[list[int]]:
        """Sample one response per prompt, batched with left padding.

        Returns the exact generated ids of each response, up to and including the first
        end-of-sequence token (no re-tokenization). Sampling is plain (top_k off) so that
        rollouts are on-policy unless ``top_p`` or ``temperature`` say otherwise.
        """
        if not prompts:
            return []
        batch = self._collate(prompts, None)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else top_p,
            top_k=None,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_id,
        )
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model.generate(**batch, generation_config=config)
        finally:
            self.model.train(was_training)
        new = out[:, batch["input_ids"].shape[1] :].tolist()
        return [self._cut_at_eos(row) for row in new]

    def _cut_at_eos(self, ids: list[int]) -> list[int]:
        return ids[: ids.index(self.eos_id) + 1] if self.eos_id in ids else ids

    # ---------------------------------------------------------------------- scoring
    def score(self, prompts: Sequence[Encoded], responses: Sequence[Sequence[int]]) -> Scored:
        """Logits of the given response ids after each prompt, in one padded batch.

        Runs with gradients when the caller allows them (wrap in ``torch.no_grad()`` for a
        teacher). Raises :class:`AlignmentError` if a response holds vision special tokens or
        the counts differ.
        """
        if len(prompts) != len(responses):
            raise AlignmentError(f"{len(prompts)} prompts but {len(responses)} responses")
        self._check_responses(responses)
        batch = self._collate(prompts, responses)
        p_len = max(len(p) for p in prompts)
        r_len = max(1, max(len(r) for r in responses))
        out = self.model(**batch, logits_to_keep=r_len + 1, use_cache=False)
        logits = out.logits[:, :r_len]  # [B, R, V]: position P-1+j predicts response token j
        ids = batch["input_ids"][:, p_len : p_len + r_len]
        mask = batch["attention_mask"][:, p_len : p_len + r_len]
        if ids.shape[1] < r_len:  # every response empty
            ids = torch.full((len(prompts), r_len), self.pad_id, device=logits.device)
            mask = torch.zeros_like(ids)
        return Scored(logits=logits, mask=mask, ids=ids)

    def _check_responses(self, responses: Sequence[Sequence[int]]) -> None:
        bad = self.forbidden_response_ids()
        for i, r in enumerate(responses):
            hit = bad.intersection(r)
            if hit:
                raise AlignmentError(
                    f"response {i} contains vision special token ids {sorted(hit)}; responses "
                    "must be plain text so that teacher and student score the same ids"
                )

    # --------------------------------------------------------------------- batching
    def _collate(
        self, prompts: Sequence[Encoded], responses: Sequence[Sequence[int]] | None
    ) -> dict[str, torch.Tensor]:
        """Model inputs for ``[left-padded prompt | right-padded response]`` rows."""
        b = len(prompts)
        p_len = max(len(p) for p in prompts)
        r_len = max((len(r) for r in responses), default=0) if responses is not None else 0
        ids = torch.full((b, p_len + r_len), self.pad_id, dtype=torch.long)
        attn = torch.zeros((b, p_len + r_len), dtype=torch.long)
        types = torch.zeros((b, p_len + r_len), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, p_len - len(p) : p_len] = torch.tensor(p.ids)
            attn[i, p_len - len(p) : p_len] = 1
            if p.token_types is not None:
                types[i, p_len - len(p) : p_len] = torch.tensor(p.token_types)
            if responses is not None and len(responses[i]):
                n = len(responses[i])
                ids[i, p_len : p_len + n] = torch.tensor(list(responses[i]))
                attn[i, p_len : p_len + n] = 1
        device = self.device
        batch = {"input_ids": ids.to(device), "attention_mask": attn.to(device)}
        batch.update(self._collate_mm(prompts, types.to(device)))
        if responses is not None:
            batch["position_ids"] = self._position_ids(batch)
        return batch

    def _collate_mm(
        self, prompts: Sequence[Encoded], types: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Multimodal tensors of a batch (none for text models)."""
        return {}

    def _position_ids(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Positions counted over real tokens only, so left padding changes nothing."""
        attn = batch["attention_mask"]
        return (attn.cumsum(-1) - 1).clamp_min(0)
