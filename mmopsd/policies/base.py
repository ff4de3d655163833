"""The policy: one model that samples responses and scores given response ids.

Alignment rule (see the methods notes): teacher and student score the *identical* response ids
appended to their own prompts. A batch is laid out as ``[left-padded prompt | right-padded
response]``, so the logits predicting response token j sit at position ``P - 1 + j`` for every
row (P = the longest prompt). Position ids come from the attention mask (text) or from the
model's own rope-index routine (Qwen-VL M-RoPE), so padding never moves a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property

import torch
from PIL import Image
from transformers import GenerationConfig

from mmopsd.engines.base import Engine, Generation
from mmopsd.engines.prefix_cache import PrefixCache, cache_keyword
from mmopsd.errors import AlignmentError
from mmopsd.policies import spans as spans_mod
from mmopsd.policies.precision import computing
from mmopsd.types import Encoded, Message

_SENTINEL = "\u2063mmopsd-turn\u2063"


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

    sees_images: bool = False  # text-only models read only the text of observations
    # The dtype forward passes run in under autocast when it differs from the weights'
    # (mixed precision, :mod:`mmopsd.policies.precision`); None: the weights' own.
    compute_dtype: torch.dtype | None = None

    def __init__(self, model: torch.nn.Module, tokenizer: object) -> None:
        self.model = model
        # The module scoring goes through when it differs from ``model`` (a data-parallel
        # wrapper whose backward synchronises gradients); sampling always uses ``model``.
        self.forward_model: torch.nn.Module | None = None
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
        if eos is None:
            raise ValueError("the tokenizer has no eos_token_id; set one before building a Policy")
        self.eos_id: int = int(eos)
        pad = tokenizer.pad_token_id  # type: ignore[attr-defined]
        self.pad_id: int = int(pad) if pad is not None else self.eos_id
        self.stop_ids: frozenset[int] = stop_ids(model, self.eos_id)

    # ------------------------------------------------------------------ to implement
    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        """The chat-template text of ``messages``."""
        raise NotImplementedError

    def tokenize(self, text: str, images: Sequence[Image.Image] = ()) -> Encoded:
        """Token ids (and image tensors) of rendered ``text`` holding ``images``."""
        raise NotImplementedError

    # --------------------------------------------------------------------- encoding
    def encode(self, messages: Sequence[Message], *, assistant_prefix: str = "") -> Encoded:
        """The prompt ids of ``messages`` plus the generation prompt and ``assistant_prefix``.

        Generated assistant messages (:func:`mmopsd.types.generated`) keep their exact ids:
        the conversation is encoded piecewise, each generated turn's ids spliced in as they
        were sampled, and only the text between them is tokenized (see
        :meth:`encode_continuation`).
        """
        messages = list(messages)
        cuts = [i for i, m in enumerate(messages) if m.generated]
        if not cuts:
            return self._encode_text(messages, assistant_prefix)
        if cuts[-1] == len(messages) - 1:
            raise ValueError("a prompt cannot end with an assistant message: add the next turn")
        first = messages[: cuts[0]]
        parts = [self._encode_text(first, messages[cuts[0]].prefix)]
        for n, i in enumerate(cuts):
            gen = messages[i]
            ids = list(gen.response_ids or [])
            end = cuts[n + 1] if n + 1 < len(cuts) else len(messages)
            prefix = messages[end].prefix if end < len(messages) else assistant_prefix
            parts.append(Encoded(ids=ids, token_types=[0] * len(ids)))
            closed = bool(ids) and ids[-1] == self.eos_id
            parts.append(self.encode_continuation(messages[i + 1 : end], prefix, closed=closed))
        return Encoded.concat(parts)

    def encode_continuation(
        self, messages: Sequence[Message], assistant_prefix: str = "", *, closed: bool
    ) -> Encoded:
        """The ids that follow a generated assistant turn: the template's end of that turn
        (minus the end-of-sequence token when the response already ``closed`` with it), the
        new ``messages``, the generation prompt and ``assistant_prefix``.

        Appending these ids to the previous prompt and response builds the next prompt without
        re-tokenizing the history. Raises ``ValueError`` if the chat template does not render
        a conversation as the concatenation of its turns.
        """
        if not messages:
            raise ValueError("a continuation needs at least one new message")
        base, base_text, close, eos_text = self._turn_frame
        full = self.render([*base, *messages], add_generation_prompt=True)
        if not full.startswith(base_text):
            raise ValueError(
                "this chat template rewrites earlier turns when a turn is added, so turns cannot "
                "be appended token by token; use a template that renders turns independently"
            )
        if closed and close.startswith(eos_text):
            close = close[len(eos_text) :]
        text = close + full[len(base_text) :] + assistant_prefix
        return self.tokenize(text, [img for m in messages for img in m.images])

    @cached_property
    def _turn_frame(self) -> tuple[list[Message], str, str, str]:
        """A finished reference conversation, its text, the template's end of an assistant
        turn and the end-of-sequence text (computed once per policy)."""
        base = [Message("system", "s"), Message("user", "u"), Message("assistant", _SENTINEL)]
        base_text = self.render(base, add_generation_prompt=False)
        close = base_text.split(_SENTINEL, 1)[1]
        eos_text = self.tokenizer.decode([self.eos_id])  # type: ignore[attr-defined]
        return base, base_text, close, eos_text

    def _encode_text(self, messages: Sequence[Message], assistant_prefix: str) -> Encoded:
        text = self.render(messages, add_generation_prompt=True) + assistant_prefix
        return self.tokenize(text, [img for m in messages for img in m.images])

    def forbidden_response_ids(self) -> set[int]:
        """Token ids that may never appear in a response (vision placeholders)."""
        return set()

    # ---------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def _computing(self) -> AbstractContextManager[None]:
        """Forward passes inside run in :attr:`compute_dtype` (mixed precision)."""
        return computing(self.compute_dtype, self.device)

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
        end-of-sequence token (no re-tokenization). Vision special tokens are never sampled.
        Sampling is plain (top_k off) so that rollouts are on-policy unless ``top_p`` or
        ``temperature`` say otherwise.
        """
        return [
            g.ids
            for g in self.sample(
                prompts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                greedy=greedy,
            )
        ]

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        logprobs: bool = False,
        prefix_cache: PrefixCache | None = None,
    ) -> list[Generation]:
        """:meth:`generate`, as :class:`~mmopsd.engines.Generation` records; with
        ``logprobs`` each also holds the log-probability of every sampled id under the
        model's raw (temperature 1) distribution at generation time (this keeps one
        ``[B, V]`` row of logits per generated position until the batch ends).

        With a ``prefix_cache`` (text models), a prompt that continues an earlier call's
        prompt and response reuses their keys and values: only its new tokens are prefilled
        (:mod:`mmopsd.engines.prefix_cache`). ``temperature=0`` decodes greedily."""
        if not prompts:
            return []
        greedy = greedy or temperature == 0  # temperature 0 means greedy, as in a config
        reuse = prefix_cache is not None and not self.sees_images
        config = self._generation_config(
            max_new_tokens, None if greedy else (temperature, top_p), logprobs, reuse
        )
        was_training = self.model.training
        self.model.eval()
        try:
            with self._computing():
                if reuse:
                    ids = [p.ids for p in prompts]
                    laid = prefix_cache.layout(self.model, ids, self.pad_id, max_new_tokens)  # type: ignore[union-attr]
                    batch = {"input_ids": laid.input_ids, "attention_mask": laid.attention_mask}
                    if laid.cache is not None:
                        batch[cache_keyword(self.model)] = laid.cache
                else:
                    batch = self._collate(prompts, None)
                out = self.model.generate(**batch, generation_config=config)
        finally:
            self.model.train(was_training)
        sequences = out.sequences if config.return_dict_in_generate else out
        new = sequences[:, batch["input_ids"].shape[1] :]
        rows = [self.cut_at_eos(row) for row in new.tolist()]
        if reuse:
            prefix_cache.keep(  # type: ignore[union-attr]
                getattr(out, cache_keyword(self.model)),  # the cache, by its name in this version
                batch["input_ids"],
                batch["attention_mask"],
                rows,
            )
        if not logprobs:
            return [Generation(ids=row) for row in rows]
        return _with_logprobs(rows, out.logits, new)

    def _generation_config(
        self,
        max_new_tokens: int,
        sampling: tuple[float, float] | None,
        logprobs: bool,
        reuse: bool,
    ) -> GenerationConfig:
        """How ``generate`` runs: greedy where ``sampling`` is None, else with its
        ``(temperature, top_p)``; every stop id ends a row."""
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sampling is not None,
            temperature=None if sampling is None else sampling[0],
            top_p=None if sampling is None else sampling[1],
            top_k=None,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.stop_ids),  # every end-of-sequence id stops, as in vLLM
            # Vision placeholders may never be sampled: the next prompt would not line up.
            suppress_tokens=sorted(self.forbidden_response_ids()) or None,
            output_logits=logprobs,
            return_dict_in_generate=logprobs or reuse,
        )

    def cut_at_eos(self, ids: Sequence[int]) -> list[int]:
        """``ids`` up to and including the first end-of-sequence id, any of
        :attr:`stop_ids` (all of them if none)."""
        ids = list(ids)
        end = next((i for i, t in enumerate(ids) if t in self.stop_ids), None)
        return ids if end is None else ids[: end + 1]

    def default_engine(self) -> Engine:
        """The engine that samples this policy when a run or an evaluation names none: the
        policy's own model (batched Hugging Face ``generate``)."""
        from mmopsd.engines.hf import HFEngine

        return HFEngine(self)

    # ---------------------------------------------------------------------- scoring
    def score(self, prompts: Sequence[Encoded], responses: Sequence[Sequence[int]]) -> Scored:
        """Logits of the given response ids after each prompt, in one padded batch (text
        prompts that share a beginning of at least ``spans.MIN_SHARED`` ids: through
        :meth:`score_spans`, which feeds it once).

        Runs with gradients when the caller allows them (wrap in ``torch.no_grad()`` for a
        teacher). Raises :class:`AlignmentError` if a response holds vision special tokens or
        the counts differ.
        """
        if len(prompts) != len(responses):
            raise AlignmentError(f"{len(prompts)} prompts but {len(responses)} responses")
        self._check_responses(responses)
        if self._shares(prompts):
            sequences = [Encoded(ids=[*p.ids, *r]) for p, r in zip(prompts, responses)]
            spans = [(i, len(p), len(r)) for i, (p, r) in enumerate(zip(prompts, responses))]
            return self.score_spans(sequences, spans)
        batch = self._collate(prompts, responses)
        p_len = max(len(p) for p in prompts)
        r_len = max(1, max(len(r) for r in responses))
        model = self.forward_model if self.forward_model is not None else self.model
        with self._computing():
            out = model(**batch, logits_to_keep=r_len + 1, use_cache=False)
        logits = out.logits[:, :r_len]  # [B, R, V]: position P-1+j predicts response token j
        ids = batch["input_ids"][:, p_len : p_len + r_len]
        mask = batch["attention_mask"][:, p_len : p_len + r_len]
        if ids.shape[1] < r_len:  # every response empty
            ids = torch.full((len(prompts), r_len), self.pad_id, device=logits.device)
            mask = torch.zeros_like(ids)
        return Scored(logits=logits, mask=mask, ids=ids)

    def score_spans(
        self, sequences: Sequence[Encoded], spans: Sequence[tuple[int, int, int]]
    ) -> Scored:
        """Logits of token spans inside whole text sequences.

        ``spans[k] = (row, start, length)`` asks for the logits predicting
        ``sequences[row].ids[start : start + length]`` (``start >= 1``); row k of the result
        holds them, as :meth:`score` would for that span's tokens after the ids before it.
        Several spans may lie in one sequence (the turns of a conversation,
        :mod:`mmopsd.training.nesting`), and beginnings that rows share are fed once
        (:mod:`mmopsd.policies.spans`).
        """
        if not sequences or not spans:
            raise AlignmentError("score_spans needs at least one sequence and one span")
        for row, start, length in spans:
            if not 0 <= row < len(sequences) or start < 1 or start + length > len(sequences[row]):
                raise AlignmentError(
                    f"span (row {row}, start {start}, length {length}) is not inside the "
                    f"{len(sequences)} sequences given"
                )
        self._check_responses([sequences[r].ids[s : s + n] for r, s, n in spans])
        model = self.forward_model if self.forward_model is not None else self.model
        share = spans_mod.can_share(model) and not self.sees_images
        with self._computing():
            logits = spans_mod.forward_spans(
                model, sequences, spans, self.pad_id, self.device, share=share
            )
        r_len = logits.shape[1]
        ids = torch.full((len(spans), r_len), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(spans), r_len), dtype=torch.long)
        for k, (r, s, n) in enumerate(spans):
            ids[k, :n] = torch.tensor(sequences[r].ids[s : s + n], dtype=torch.long)
            mask[k, :n] = 1
        return Scored(logits=logits, mask=mask.to(self.device), ids=ids.to(self.device))

    def _shares(self, prompts: Sequence[Encoded]) -> bool:
        """Whether text prompts share beginnings worth feeding once (:meth:`score_spans`)."""
        if self.sees_images or len(prompts) < 2 or any(p.mm or p.images for p in prompts):
            return False
        if not spans_mod.can_share(self.forward_model or self.model):
            return False
        return bool(
            spans_mod.shared_groups([p.ids for p in prompts], [len(p) - 1 for p in prompts])
        )

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


def stop_ids(model: torch.nn.Module | None, eos_id: int) -> frozenset[int]:
    """The ids that end a response: the tokenizer's end-of-sequence id and every
    ``eos_token_id`` of the model's generation config (vLLM stops on all of them too:
    ``SamplingParams.update_from_generation_config`` in ``vllm/sampling_params.py``)."""
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    if extra is None:
        return frozenset({eos_id})
    return frozenset({eos_id, *([extra] if isinstance(extra, int) else extra)})


def _with_logprobs(
    rows: list[list[int]], logits: Sequence[torch.Tensor], new: torch.Tensor
) -> list[Generation]:
    """Generations with the raw (temperature 1) log-probability of each sampled id, from
    ``generate``'s per-step logits."""
    steps = torch.stack(tuple(logits), 1).float().log_softmax(-1)  # [B, N, V]
    picked = steps.gather(-1, new[:, : steps.shape[1], None]).squeeze(-1).tolist()
    return [Generation(ids=row, logprobs=lp[: len(row)]) for row, lp in zip(rows, picked)]
