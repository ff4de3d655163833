"""Any OpenAI-compatible server (vLLM, SGLang, ``transformers serve``, llama.cpp, hosted APIs)
as a rollout engine, through the ``openai`` client.

Prompts are the exact ids a local policy would feed its model, rendered back to text with the
served model's own tokenizer and sent to ``/v1/completions``: the server sees the same chat
template, history splicing and forced answer prefix as a local model. Requests run
concurrently (one per episode in flight); the client retries 429 and 5xx answers with
exponential backoff and gives up after ``timeout`` seconds per request. The API key is read
from an environment variable and is never printed, logged or written anywhere.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mmopsd.engines.base import Generation
from mmopsd.engines.chat_format import openai_messages
from mmopsd.errors import ServerError
from mmopsd.types import Encoded, Message

TOKEN_IDS = {"return_token_ids": True}  # vLLM's extension: the exact sampled ids
# vLLM's extension: the answer continues the final (assistant) message, the forced prefix
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}
# The continuation probe: a forced start whose only sensible continuation is known. A server
# that honours CONTINUE answers "five ..."; one that ignores the field (answering 200 all the
# same, as llama.cpp's server does) closes the prefix as a finished message and starts anew.
PROBE_QUESTION = "Count from one to ten in words, separated by spaces."
PROBE_PREFIX = "one two three four"
PROBE_NEXT = "five"
# Where the server cannot continue the forced answer start, the start is written at the end
# of the last user message, where a small model copies it (and it is removed from the answer).
# Phrasings tried with SmolLM2-135M on llama.cpp's server, one-room KeyDoor, 64 episodes
# (completions mode: 0.578): this one 0.516 with no invalid answer (0.484 against 0.484 on 64
# other episodes); "(Answer starts with: ...)" 0.531, "Fill in the blank: ..." 0.578 with
# "door" named (0.484, 9% invalid without it), "Complete the sentence: ..." 0.422 and "Reply:"
# 0.391 with invalid answers; "Begin your answer with ..." was ignored (the model described
# its room).
INSTRUCTION = " {prefix}"


class OpenAIEngine:
    """Samples completions from a served model.

    Args:
        base_url: the server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        tokenizer: the served model's tokenizer (renders prompt ids as text and recovers
            response ids where the server returns none); :meth:`generate` needs it,
            :meth:`chat` does not.
        eos_id: its end-of-sequence id (appended when the server reports a natural stop).
        api_key_env: the environment variable holding the API key (unset: no key, as local
            servers expect).
        concurrency: requests in flight at once.
        timeout: seconds per request before it is retried.
        max_retries: retries of a request that timed out or got a 429/5xx answer.
        chat: :meth:`generate` sends the conversations to ``/v1/chat/completions`` (the
            server applies its own template, images go as PNG data URLs) instead of the
            exact prompt ids to ``/v1/completions``; answers are then tokenized text.
    """

    name = "openai"
    follows_weights = False  # a server this run does not update

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any = None,
        eos_id: int | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 4,
        chat: bool = False,
    ) -> None:
        from openai import OpenAI

        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.tokenizer = tokenizer
        self.eos_id = eos_id
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.chat_mode = chat
        key = os.environ.get(api_key_env) or "EMPTY"
        self._token_ids = False  # set by check()
        self._continues: bool | None = None  # can the server continue a message? (probed)
        self._probe_lock = threading.Lock()
        self._client = OpenAI(
            base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    def sync(self, model: Any) -> None:
        """Nothing is sent: the server keeps its own weights (samples grow off-policy as the
        student trains; the trainer's truncated importance weight corrects for that where
        the server returns log-probs)."""

    def sleep(self) -> None:
        """The server's memory is not ours."""

    def wake(self) -> None:
        """See :meth:`sleep`."""

    # -------------------------------------------------------------------- checks
    def check(self) -> None:
        """Raise :class:`ServerError` unless the server answers and serves ``model``."""
        once = self._client.with_options(max_retries=1)  # an unreachable server fails fast
        served = [m.id for m in self._call(once.models.list, "list its models").data]
        if served and self.model not in served:
            raise ServerError(
                f"the server at {self.base_url} does not serve {self.model!r}; it serves: "
                f"{', '.join(served[:10])}. Pass one of them as --model"
            )
        self._token_ids = self._returns_token_ids()

    def _returns_token_ids(self) -> bool:
        """Whether the server returns the sampled ids when asked (vLLM does; a server that
        rejects the field gets plain requests and its text is tokenized instead)."""
        import openai

        try:
            out = self._client.with_options(max_retries=1).completions.create(
                model=self.model, prompt="Hi", max_tokens=1, extra_body=TOKEN_IDS
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            return False
        except openai.APIError as err:
            raise ServerError(
                f"the server at {self.base_url} failed a one-token completion of "
                f"{self.model!r}: {_short(err)}"
            ) from err
        return "token_ids" in (out.choices[0].model_extra or {})

    # ---------------------------------------------------------------- generation
    def generate(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        conversations: Sequence[Sequence[Message]] | None = None,
        assistant_prefix: str = "",
    ) -> list[Generation]:
        """One completion per prompt, ``concurrency`` requests at a time, in order; in chat
        mode one chat answer per conversation (see :meth:`chat_generate`)."""
        if self.chat_mode:
            if conversations is None:
                raise TypeError("a chat-mode engine answers conversations: pass them")
            return self.chat_generate(
                [openai_messages(c) for c in conversations],
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                greedy=greedy,
                assistant_prefix=assistant_prefix,
            )
        sampling = {
            "max_tokens": max_new_tokens,
            "temperature": 0.0 if greedy else temperature,
            "top_p": 1.0 if greedy else top_p,
        }
        return self._map(lambda p: self._complete(p, sampling), prompts)

    def chat(self, prompts: Sequence[str], *, max_new_tokens: int = 64) -> list[str]:
        """Greedy chat answers, one per user prompt (the server applies its own template;
        no tokenizer needed, so any hosted model works)."""
        sampling = {"max_tokens": max_new_tokens, "temperature": 0.0}

        def one(prompt: str) -> str:
            messages = [{"role": "user", "content": prompt}]
            return self._chat_choice(messages, sampling).message.content or ""

        return self._map(one, prompts)

    def chat_generate(
        self,
        conversations: Sequence[list[dict[str, Any]]],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        assistant_prefix: str = "",
    ) -> list[Generation]:
        """One chat answer per conversation of OpenAI chat messages (images as data URLs;
        see :func:`mmopsd.engines.chat_format.openai_messages`). The server applies its own
        chat template, so the answer's ids are its text tokenized (``exact=False``), with
        the end-of-sequence id appended when the model stopped by itself.

        ``assistant_prefix`` is forced where the server can continue a final assistant
        message (vLLM's ``continue_final_message``; :meth:`continues` probes it once by the
        answer); elsewhere the prefix is asked for in words at the end of the last user
        message, and an answer that restates it (in any case) has it removed, so the text
        always reads as what follows the prefix."""
        if self.tokenizer is None or self.eos_id is None:
            raise TypeError("chat answers as ids need the served model's tokenizer")
        sampling = {
            "max_tokens": max_new_tokens,
            "temperature": 0.0 if greedy else temperature,
            "top_p": 1.0 if greedy else top_p,
        }

        def one(messages: list[dict[str, Any]]) -> Generation:
            choice, forced = self._chat_with_prefix(messages, sampling, assistant_prefix)
            text = choice.message.content or ""
            if not forced:
                text = without_restated(text, assistant_prefix)
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if choice.finish_reason == "stop":
                ids.append(self.eos_id)
            return Generation(ids=ids, exact=False)

        return self._map(one, conversations)

    def _chat_with_prefix(
        self, messages: list[dict[str, Any]], sampling: dict[str, Any], prefix: str
    ) -> tuple[Any, bool]:
        """The answer's choice and whether ``prefix`` was forced (continued by the server).
        Where the server cannot continue a message, the prefix goes as an instruction at the
        end of the last user message instead, and the answer may be longer by the prefix's
        own tokens (it restates them before the part that counts)."""
        if not prefix:
            return self._chat_choice(messages, sampling), False
        if self.continues():
            partial = [*messages, {"role": "assistant", "content": prefix}]
            return self._chat_choice(partial, sampling, CONTINUE), True
        restated = len(self.tokenizer(prefix, add_special_tokens=False)["input_ids"]) + 2
        longer = {**sampling, "max_tokens": sampling["max_tokens"] + restated}
        return self._chat_choice(with_instruction(messages, prefix), longer), False

    def continues(self) -> bool:
        """Whether the server continues a final assistant message: probed once by looking
        at the answer, since a server that ignores the request's unknown fields still
        answers 200 (a 400/422 answer to the field also means no)."""
        with self._probe_lock:
            if self._continues is None:
                self._continues = self._probe_continuation()
            return self._continues

    def _probe_continuation(self) -> bool:
        import openai

        partial = [
            {"role": "user", "content": PROBE_QUESTION},
            {"role": "assistant", "content": PROBE_PREFIX},
        ]
        sampling = {"max_tokens": 4, "temperature": 0.0}
        try:
            choice = self._chat_choice(partial, sampling, CONTINUE, retry=False)
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            return False
        return continues_probe(choice.message.content or "")

    def _chat_choice(
        self,
        messages: list[dict[str, Any]],
        sampling: dict[str, Any],
        extra: dict[str, Any] | None = None,
        *,
        retry: bool = True,
    ) -> Any:
        """The first choice of a chat completion; with ``retry`` False a 400/422 answer is
        raised as the client's own error (the probe of an optional field)."""

        def request() -> Any:
            return self._client.chat.completions.create(
                model=self.model, messages=messages, extra_body=extra, **sampling
            )

        import openai

        keep = () if retry else (openai.BadRequestError, openai.UnprocessableEntityError)
        return self._call(request, "answer a chat prompt", keep=keep).choices[0]

    def _map(self, request: Any, items: Sequence[Any]) -> list[Any]:
        """``request`` on every item, ``concurrency`` at a time, results in order."""
        if not items:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(items))) as pool:
            return list(pool.map(request, items))

    def _complete(self, prompt: Encoded, sampling: dict[str, Any]) -> Generation:
        if self.tokenizer is None or self.eos_id is None:
            raise TypeError("completions from exact prompt ids need the model's tokenizer")
        text = self.tokenizer.decode(list(prompt.ids), skip_special_tokens=False)
        out = self._call(
            lambda: self._client.completions.create(
                model=self.model,
                prompt=text,
                logprobs=1,
                extra_body=TOKEN_IDS if self._token_ids else None,
                **sampling,
            ),
            "complete a prompt",
        )
        choice = out.choices[0]
        extra = choice.model_extra or {}
        ids = extra.get("token_ids")
        exact = ids is not None
        if ids is None:
            ids = self.tokenizer(choice.text, add_special_tokens=False)["input_ids"]
        ids = list(ids)[: sampling["max_tokens"]]
        # The end-of-sequence token is not in the text: a "stop", or one token more counted
        # than the text holds (an eos in the last allowed position), says it was sampled.
        counted = getattr(out.usage, "completion_tokens", None)
        stopped = choice.finish_reason == "stop" or counted == len(ids) + 1
        if stopped and (not ids or ids[-1] != self.eos_id):
            ids.append(self.eos_id)
        logprobs = getattr(choice.logprobs, "token_logprobs", None)
        if logprobs is not None and len(logprobs) != len(ids):
            logprobs = None  # not aligned with the ids: never use them
        return Generation(ids=ids, logprobs=logprobs, exact=exact)

    def _call(self, request: Any, what: str, keep: tuple[type, ...] = ()) -> Any:
        """``request()``, its failures as one :class:`ServerError` naming the server (the
        client's errors of the types in ``keep`` are raised as they are)."""
        import openai

        try:
            return request()
        except keep:
            raise
        except openai.APIConnectionError as err:  # includes timeouts
            raise ServerError(
                f"cannot reach the server at {self.base_url} to {what} "
                f"({type(err).__name__}: {err}); start it, or fix --base-url"
            ) from err
        except openai.AuthenticationError as err:
            raise ServerError(
                f"the server at {self.base_url} refused the API key (401); set the variable "
                "named by --api-key-env to a valid key"
            ) from err
        except openai.APIStatusError as err:
            raise ServerError(
                f"the server at {self.base_url} answered {err.status_code} when asked to "
                f"{what} (after {self.max_retries} retries): {_short(err)}"
            ) from err


def _short(err: Any) -> str:
    body = getattr(err, "body", None)
    text = str(body.get("message", body) if isinstance(body, dict) else err.message)
    return " ".join(text.split())[:300]


def continues_probe(answer: str) -> bool:
    """Whether ``answer`` continues :data:`PROBE_PREFIX` (its first word is the next number)
    rather than starting a new message."""
    words = answer.lower().replace(",", " ").replace(".", " ").split()
    return bool(words) and words[0] == PROBE_NEXT


def with_instruction(messages: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """``messages`` with the forced answer start written at the end of the last user message
    (:data:`INSTRUCTION`): the model then restates it, and the restated prefix is removed."""
    note = INSTRUCTION.format(prefix=prefix.strip())
    out = [dict(m) for m in messages]
    last = max(i for i, m in enumerate(out) if m["role"] == "user")
    content = out[last]["content"]
    if isinstance(content, str):
        out[last]["content"] = content + note
    else:  # a list of parts (text and images)
        out[last]["content"] = [*content, {"type": "text", "text": note.strip()}]
    return out


def without_restated(text: str, prefix: str) -> str:
    """``text`` as what follows ``prefix``: the prefix removed where the answer restates it
    (any case, surrounding quotes and spaces aside)."""
    label = prefix.strip().lower()
    body = text.strip()
    if body[:1] in ("'", '"') and body.endswith(body[0]):  # the answer quoted as a whole
        body = body[1:-1]
    if label and body.lower().startswith(label):
        return " " + body[len(label) :].lstrip()
    return text
