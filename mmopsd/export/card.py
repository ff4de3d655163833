"""The model card (``README.md`` with hub metadata) of an exported agent: what it was trained
from, how, on which environments, with which privileged information, how it scored, and the
command that trained it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmopsd.config import TrainConfig


def model_card(
    config: TrainConfig,
    *,
    base_id: str | None,
    step: int,
    evaluation: str | None,
    vision: bool = False,
    lora: str = "merge",
) -> str:
    """The card's Markdown: YAML front matter for the hub, then the run in words and tables."""
    envs = list(dict.fromkeys(t.env for t in config.tasks))
    more = f" and {len(envs) - 1} more" if len(envs) > 1 else ""
    body = [
        f"# {config.method.name} agent for {envs[0]}{more}",
        "",
        "Trained with [mmopsd](https://pypi.org/project/mmopsd/) by on-policy "
        "self-distillation: the model played its own episodes, and at every turn it was "
        "trained towards its own next-token distribution given privileged information it "
        "will not have when it is used. It acts from the plain observation alone.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in _facts(config, base_id, step, envs)],
        "",
        "## Evaluation (held-out seeds)",
        "",
        evaluation or "No evaluation was recorded for this checkpoint.",
        "",
        *_usage(vision, envs[0]),
    ]
    return "\n".join([*_front_matter(config, base_id, vision, lora), "", *body])


def _front_matter(config: TrainConfig, base_id: str | None, vision: bool, lora: str) -> list[str]:
    """The hub's metadata block."""
    tags = ["mmopsd", "self-distillation", "on-policy-distillation", "agent", config.method.name]
    library = "peft" if config.model.lora and lora == "adapter" else "transformers"
    return [
        "---",
        *([f"base_model: {base_id}"] if base_id else []),
        f"library_name: {library}",
        "pipeline_tag: " + ("image-text-to-text" if vision else "text-generation"),
        "tags:",
        *[f"- {t}" for t in dict.fromkeys(tags)],
        "---",
    ]


def _facts(
    config: TrainConfig, base_id: str | None, step: int, envs: list[str]
) -> list[tuple[str, str]]:
    """The run in one table: base, method, training, environments, privileged information."""
    method, opt = config.method, config.optimizer
    steps = f"{step} step{'s' if step != 1 else ''}"
    return [
        ("base model", base_id or f"a local model (`{Path(config.model.name).name}`)"),
        ("method", f"`{method.name}` (loss `{method.loss}`, teacher `{config.teacher.update}`)"),
        ("training", f"{steps} of {opt.batch_size} episodes, lr {opt.lr:g}"
                     + (", LoRA" if config.model.lora else "")),
        ("environments", ", ".join(f"`{e}`" for e in envs)),
        ("privileged information (teacher only)", _providers(config)),
        ("turns per episode", str(config.rollout.max_turns)),
    ]  # fmt: skip


def _providers(config: TrainConfig) -> str:
    """Each task's provider and its options, named once when all tasks share them."""
    said = [
        f"`{t.provider}`" + (f" {dict(t.provider_kwargs)}" if t.provider_kwargs else "")
        for t in config.tasks
    ]
    unique = list(dict.fromkeys(said))
    return unique[0] if len(unique) == 1 else "; ".join(unique)


def _usage(vision: bool, env: str) -> list[str]:
    """How to load it, how to play it, how it was trained."""
    cls = "AutoModelForImageTextToText" if vision else "AutoModelForCausalLM"
    loader = "AutoProcessor" if vision else "AutoTokenizer"
    return [
        "## Use",
        "",
        "```python",
        f"from transformers import {cls}, {loader}",
        "",
        f'model = {cls}.from_pretrained("<this folder>")',
        f'{"processor" if vision else "tokenizer"} = {loader}.from_pretrained("<this folder>")',
        "```",
        "",
        "Its own agent loop (prompt, answer prefix, action parsing) is mmopsd's:",
        "",
        "```bash",
        f"mmopsd eval --model <this folder> --env {env}",
        "```",
        "",
        "## Training command",
        "",
        "The run's whole config is `mmopsd_config.yaml` in this folder:",
        "",
        "```bash",
        "mmopsd train --config mmopsd_config.yaml",
        "```",
        "",
    ]


def evaluation_table(run_dir: Path, step: int) -> str | None:
    """The run's held-out success before training and at ``step`` (and its teacher's), from
    its ``metrics.jsonl``; None when it holds no evaluation at or before ``step``."""
    from mmopsd.training.metrics import MetricsLog
    from mmopsd.training.summary import summarise_run

    records = MetricsLog(run_dir / "metrics.jsonl").read() if run_dir.is_dir() else []
    evals = [r for r in records if r.get("kind") == "eval" and r["step"] <= step]
    if not evals:
        return None
    first, last = _first(evals), evals[-1]
    summary = summarise_run(last["step"], first, last, 0.0, run_dir)
    where = "" if last["step"] == step else f" (the last evaluation, at step {last['step']})"
    return summary.table() + f"\n\nAfter step {last['step']}{where}."


def _first(evals: list[dict[str, Any]]) -> dict[str, Any]:
    starts = [r for r in evals if r["step"] == 0]
    return starts[-1] if starts else evals[0]
