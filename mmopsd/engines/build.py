"""``rollout.engine: hf | vllm | openai``: the rollout engine a config names, built for a policy."""

from __future__ import annotations

from typing import Any

from mmopsd.checks import check_keys
from mmopsd.engines.base import Engine
from mmopsd.errors import ConfigError

ENGINES = ("hf", "vllm", "openai")
OPTIONS = {
    "hf": {"logprobs"},
    "vllm": {
        "gpu_memory_utilization", "sleep", "dtype", "max_model_len", "seed", "enforce_eager",
        "tensor_parallel_size", "max_num_seqs",
    },
    "openai": {"base_url", "model", "api_key_env", "concurrency", "timeout", "max_retries"},
}  # fmt: skip


def check_engine(name: str, options: dict[str, Any]) -> None:
    """Raise a :class:`ConfigError` naming the fix unless engine ``name`` can be built with
    ``options`` here (called before any model loads)."""
    if name not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
    check_keys("rollout.engine_kwargs", f"engine {name!r}", options, sorted(OPTIONS[name]))
    if name == "vllm" and options.get("tensor_parallel_size", 1) != 1:
        # tp > 1 makes vLLM pick its multi-process executor (vllm/config/parallel.py), which
        # has no in-process driver worker for sync() to load weights into.
        raise ConfigError(
            "engine: vllm runs one engine per training process on its own GPU; "
            "tensor_parallel_size must be 1 (scale out with more processes: torchrun)"
        )
    if name == "vllm":
        from mmopsd.engines.colocated import require_vllm

        require_vllm()
    missing = [k for k in ("base_url", "model") if name == "openai" and k not in options]
    if missing:
        raise ConfigError(
            f"engine: openai needs engine_kwargs {' and '.join(missing)} (the server's URL, "
            "e.g. http://127.0.0.1:8000/v1, and the name it serves the student under)"
        )


def build_engine(
    name: str,
    policy: Any,
    student_model: str | None = None,
    processes: int = 1,
    rank: int = 0,
    run_seed: int = 0,
    **options: Any,
) -> Engine:
    """The engine ``name`` sampling for ``policy`` (its tokenizer renders and reads ids).

    Args:
        name: ``hf`` (the policy's own model), ``vllm`` (an in-process vLLM on the same GPU,
            built from ``model_dir`` and synced with the trained weights after every step) or
            ``openai`` (an OpenAI-compatible server: ``base_url`` and ``model`` required).
        student_model: the student's model: a packaged alias or local directory (vllm).
        processes: training processes (vllm: one engine per rank).
        rank: this process's rank; run_seed: the run's seed (vllm samples with
            ``run_seed + rank``, or ``engine_kwargs.seed + rank`` when the config sets one).
        options: the engine's options (``engine_kwargs``), checked against :data:`OPTIONS`.
    """
    check_engine(name, options)
    if name == "hf":
        from mmopsd.engines.hf import HFEngine

        return HFEngine(policy, **options)
    if name == "vllm":
        from mmopsd.engines.colocated import VLLMEngine
        from mmopsd.policies.loading import resolve_model_path

        if student_model is None:
            raise ConfigError("engine: vllm needs the student's model (a local directory)")
        options = dict(options)
        return VLLMEngine(
            str(resolve_model_path(student_model)),
            policy.eos_id,
            stop_ids=sorted(policy.stop_ids),
            suppressed_ids=sorted(policy.forbidden_response_ids()),
            image_pad_id=getattr(policy.model.config, "image_token_id", None),
            processes=processes,
            seed=options.pop("seed", run_seed) + rank,
            **options,
        )
    return _served(policy, options)


def _served(policy: Any, options: dict[str, Any]) -> Engine:
    from mmopsd.engines.served import OpenAIEngine

    options = dict(options)
    engine = OpenAIEngine(
        options.pop("base_url"), options.pop("model"), policy.tokenizer, policy.eos_id, **options
    )
    engine.check()
    return engine
