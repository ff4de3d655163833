"""The sections of a training config, one dataclass each; every field documents itself
(:func:`~mmopsd.config.fields.option`), and ``docs/configuration.md`` is generated from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mmopsd.config.fields import Section, option
from mmopsd.errors import ConfigError

DEFAULT_ENV = "mmopsd/KeyDoor-v0"  # the one task of a config that lists none
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj")


@dataclass
class ModelConfig(Section):
    """The model trained (the student, and the teacher it starts as)."""

    key = "model"
    name: str = option(
        "smollm2-135m",
        "`smollm2-135m` (packaged), a local model directory, or a hub id already in the local "
        "cache.",
    )
    dtype: str = option(
        "auto",
        "`auto` (bf16 on capable GPUs; on a CPU with bf16 matrix units, fp32 weights whose "
        "products run in bf16; fp32 elsewhere), `float32`, `bfloat16`, `float16`, `bf16-mixed` "
        "(fp32 weights, bf16 products).",
        choices=("auto", "float32", "bfloat16", "float16", "bf16-mixed"),
    )
    device: str = option("auto", "`auto` (the first GPU if any), `cpu`, `cuda`, `cuda:N`, `mps`.")
    lora: bool = option(False, "Train LoRA adapters (peft) instead of all weights.")
    lora_r: int = option(16, "LoRA rank.", at_least=1)
    lora_alpha: int = option(32, "LoRA alpha.", at_least=1)
    lora_targets: list[str] = option(
        doc="Module names LoRA adapts.",
        factory=lambda: list(LORA_TARGETS),
    )
    freeze_vision: bool = option(
        False,
        "Keep a vision-language model's vision tower fixed (only the language model trains).",
    )
    activation_checkpointing: bool = option(
        False,
        "Recompute each layer's activations in the backward pass instead of keeping them "
        "(gradient checkpointing): a step's memory falls several-fold for long prompts "
        "(multi-turn MiniWoB++ pages) at the cost of one more forward per micro-batch "
        "(benchmarks/results/multistep_step_memory.md).",
    )

    def check(self) -> None:
        import re

        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(
                f"model.device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )


@dataclass
class TaskConfig(Section):
    """One environment of the training mixture (a run on one environment is a mixture of
    one)."""

    key = "tasks[]"
    env: str = option(doc="A registered gymnasium id (required).")
    env_kwargs: dict[str, Any] = option(doc="Keyword arguments of `gymnasium.make`.", factory=dict)
    weight: float = option(
        1.0,
        "How often a step's groups draw this task, relative to the others.",
        above=0.0,
    )
    provider: str = option(
        "hint",
        "The privileged-information provider of the teacher's view (`mmopsd list`).",
    )
    provider_kwargs: dict[str, Any] = option(doc="The provider's options.", factory=dict)
    history: int | None = option(
        None,
        "Keep only the last `history` exchanges after the task (unset: the environment's prompt "
        "default, usually the full history).",
        at_least=1,
    )
    name: str = option(
        "",
        "The task's name in metrics and tables (default: the id without its namespace, plus its "
        "arguments).",
    )

    def check(self) -> None:
        if not self.env:
            raise ConfigError(
                "tasks[].env must name a registered environment, e.g. mmopsd/KeyDoor-v0"
            )
        if not self.name:
            base = self.env.split("/", 1)[-1]
            kwargs = json.dumps(self.env_kwargs, sort_keys=True) if self.env_kwargs else ""
            self.name = base + kwargs


@dataclass
class MethodConfig(Section):
    """The training method and the fields it reads: who plays, which turns train, the loss
    terms. A method fixes the fields that define it (a field left at its default takes the
    method's value; another value is an error naming both): see `docs/methods.md`."""

    key = "method"
    name: str = option(
        "custom",
        "`opsd`, `gkd`, `opsd_grpo`, `sft_teacher`, `grpo`, `dagger`, `bc_expert` or a method you "
        "registered; `custom` (the default) leaves every field as set.",
    )
    label_threshold: float = option(
        1.0,
        "`opsd_label`: a turn whose teacher-student gap (mean |log S - log T| of its sampled "
        "tokens) passes this also gets the expert's next action as a supervised label.",
        at_least=0.0,
    )
    label_coef: float = option(
        1.0, "`opsd_label`: the weight of that label against the turn's distillation.", above=0.0
    )
    actor: str = option(
        "student",
        "Who plays the training episodes: `student` (on-policy), `teacher` (the teacher with "
        "privileged information; off-policy data) or `expert` (the environment's scripted "
        "expert, `info['privileged']['next_action']`: expert cloning's data).",
        choices=("student", "teacher", "expert"),
    )
    teacher_share: float = option(
        0.0,
        "GKD's λ: the share of each step's episodes (whole groups, rounded) the teacher with "
        "privileged information plays, the rest the student's.",
        at_least=0.0,
        at_most=1.0,
    )
    success_only: bool = option(False, "Train only on won episodes (rejection sampling).")
    distill_coef: float = option(
        1.0,
        "Weight of the distillation term (0: RL alone).",
        at_least=0.0,
    )
    loss: str = option(
        "forward_kl",
        "The divergence: `forward_kl`, `reverse_kl`, `jsd`, `sampled_reverse_kl`, `sft` or a "
        "registered loss.",
    )
    loss_kwargs: dict[str, Any] = option(
        doc="Its options (`top_k`, `top_k_from`, `tail`, `clip`, `beta`, `baseline`, "
        "`chunk_size`).",
        factory=dict,
    )
    token_weighting: str = option("none", "`none`, `position` (PW-OPSD) or `tip`.")
    weighting_kwargs: dict[str, Any] = option(
        doc="Its options (`power`, `floor`, `keep`).",
        factory=dict,
    )
    turn_weighting: str = option(
        "uniform",
        "`uniform`, `discount` or `sod`: the weights of a trajectory's turns (each turn's loss is "
        "a per-token mean; turns are averaged per trajectory with these weights, then trajectories "
        "are averaged).",
    )
    turn_weighting_kwargs: dict[str, Any] = option(
        doc="Its options (`gamma`; `eps`, `delta`).",
        factory=dict,
    )
    curriculum_every: int = option(
        0,
        "TCOD curriculum: distil only the first `curriculum_start + step // curriculum_every` "
        "turns (0: off).",
        at_least=0,
    )
    curriculum_start: int = option(
        1,
        "Turns distilled at the first step of the curriculum.",
        at_least=1,
    )
    rl: str = option(
        "none",
        "The RL term on the environment reward: `none`, `add` (both terms on every episode) or "
        "`route` (won episodes to RL, lost ones to distillation).",
        choices=("none", "add", "route"),
    )
    rl_coef: float = option(1.0, "Weight of the RL term.", at_least=0.0)
    rl_advantage: str = option(
        "grpo",
        "The group advantage: `grpo` or `rloo`.",
        choices=("grpo", "rloo"),
    )
    group_size: int = option(
        1,
        "Episodes per task and seed in a batch (the groups of the advantage).",
        at_least=1,
    )
    ppo_epochs: int = option(
        1,
        "Optimizer passes over each batch (the RL term's ratio is clipped against the rollout-time "
        "log-probs from the second pass on).",
        at_least=1,
    )
    clip_eps: float = option(0.2, "PPO clip range of the RL term's ratio.", at_least=0.0)
    kl_coef: float = option(
        0.0,
        "Weight of the k3 KL penalty to the initial model (needs `teacher.update: frozen`, which "
        "is the initial model).",
        at_least=0.0,
    )
    importance_cap: float = option(
        2.0,
        "Where the engine returns its samples' log-probs, every token's loss is multiplied by "
        "`min(exp(log S - log p_engine), importance_cap)` (truncated importance sampling; 0: off).",
        at_least=0.0,
    )

    def check(self) -> None:
        if "reduction" in self.loss_kwargs:
            raise ConfigError(
                "method.loss_kwargs.reduction is set by the trainer (per-token mean per turn, "
                "turn weights per trajectory, mean over trajectories); remove it"
            )
        if self.teacher_share and self.actor == "teacher":
            raise ConfigError(
                "method.teacher_share mixes teacher episodes into the student's; with actor: "
                "teacher every episode is the teacher's already: set one of them"
            )


@dataclass
class TeacherConfig(Section):
    """The teacher: the same model, shown the privileged information."""

    key = "teacher"
    update: str = option(
        "frozen",
        "How the teacher follows the student: `frozen` (the initial model), `live` (the student "
        "itself), `ema` (an average of the student's weights) or `sync` (a copy refreshed every "
        "few steps).",
    )
    update_kwargs: dict[str, Any] = option(
        doc="Its options: `rate` (ema), `every` (sync).",
        factory=dict,
    )


@dataclass
class RolloutConfig(Section):
    """How training episodes are played (the length caps apply to evaluation too)."""

    key = "rollout"
    max_turns: int = option(1, "Turn cap per episode.", at_least=1)
    max_new_tokens: int = option(4, "Response length cap per turn.", at_least=1)
    temperature: float = option(
        1.0,
        "Sampling temperature (0: greedy, for reproducible runs).",
        at_least=0.0,
    )
    top_p: float = option(1.0, "Nucleus sampling (1: off).", above=0.0, at_most=1.0)
    split: str = option("train", "The `split` argument of training episodes.")
    engine: str = option(
        "hf",
        "What samples the episodes: `hf` (the student's own `generate`), `vllm` (an in-process "
        "vLLM loaded with the student's weights after every step; it also runs the evaluations) or "
        "`openai` (an OpenAI-compatible server this run does not update).",
        choices=("hf", "vllm", "openai"),
    )
    engine_kwargs: dict[str, Any] = option(
        doc="The engine's options: `logprobs` (hf); `gpu_memory_utilization`, `sleep`, `dtype`, "
        "`max_model_len`, `enforce_eager` (vllm); `base_url`, `model`, `api_key_env`, "
        "`concurrency`, `timeout` (openai).",
        factory=dict,
    )
    save: bool = option(False, "Write every step's trajectories to `run.out_dir/rollouts`.")


@dataclass
class OptimizerConfig(Section):
    """The optimisation: steps, batches, AdamW."""

    key = "optimizer"
    steps: int = option(40, "Optimizer steps.", at_least=1)
    batch_size: int = option(16, "Episodes sampled per step.", at_least=1)
    micro_batch_size: int = option(
        16,
        "Sequences per forward/backward pass (gradient accumulation); the earlier turns a later "
        "turn's sequence holds ride along.",
        at_least=1,
    )
    lr: float = option(1e-5, "AdamW learning rate.", above=0.0)
    weight_decay: float = option(0.0, "AdamW weight decay.", at_least=0.0)
    warmup_steps: int = option(
        0,
        "Steps of linear learning-rate warm-up from 0 (0: the full rate from the first step).",
        at_least=0,
    )
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0: off).", at_least=0.0)


@dataclass
class EvaluationConfig(Section):
    """Held-out evaluation during and after training."""

    key = "evaluation"
    every: int = option(10, "Evaluate every N steps (0: only before and after).", at_least=0)
    episodes: int = option(64, "Held-out episodes per evaluation and task.", at_least=1)
    split: str = option(
        "test",
        "The split of held-out episodes: `validation` for a run whose evaluations choose "
        "anything (steps, checkpoint, hyperparameters), `test` for final numbers (each final "
        "config once); every environment's `train`, `validation` and `test` seed streams are "
        "disjoint.",
    )
    teacher: bool = option(True, "Also evaluate the teacher with privileged information.")
    batch_size: int | None = option(
        None,
        "Held-out episodes played (and environments open) at a time; the `ood` and `retain` "
        "environments play together in one batch. Unset: 32, of them at most 8 in browsers "
        "(MiniWoB++) for a model on a CPU. Lower it to save memory.",
        at_least=1,
    )
    keep_episodes: bool = option(
        False,
        "Keep every held-out episode of the student's evaluations in "
        "`out_dir/episodes/step-N.jsonl`, with a page to look at them (`step-N.html`); on "
        "whenever `run.report_to` is set, whose trackers show a few. A result read from the "
        "cache has no episodes.",
    )
    cache: str = option(
        "eval_cache.json",
        "The file (relative to `run.out_dir`, or absolute) keeping evaluations that cannot change "
        "(the initial model's, a frozen teacher's with a static provider, the initial "
        '`ood`/`retain` results), keyed by everything they depend on; `""`: off.',
    )
    ood: list[dict[str, Any]] = option(
        doc="Out-of-distribution evaluations before training and after the last step, each `{env, "
        "env_kwargs, split, episodes, max_turns, name}` (all optional: the first task's values "
        "fill in).",
        factory=list,
    )
    retain: list[dict[str, Any]] = option(
        doc="Environments never trained on, evaluated before and after in the same form, to "
        "measure what training made the model forget.",
        factory=list,
    )


@dataclass
class RunConfig(Section):
    """Where the run lives, how it is seeded, saved, resumed and parallelised."""

    key = "run"
    out_dir: str = option(
        "runs/keydoor",
        "The run directory (config, metrics, curve, checkpoints).",
    )
    seed: int = option(0, "Seed of episodes, sampling and initialisation.")
    resume: bool = option(True, "Continue from the latest checkpoint in `out_dir` if there is one.")
    save_every: int = option(10, "Checkpoint every N steps (0: only at the end).", at_least=0)
    keep_checkpoints: int = option(2, "How many checkpoints to keep.", at_least=1)
    report_to: list[str] = option(
        [],
        "Experiment trackers that log every metric, evaluation table, the learning curve and "
        "sample episodes: `tensorboard` (event files in `out_dir/tensorboard`), `wandb` "
        "(`WANDB_MODE=offline` needs no network), `trackio`; each an extra "
        "(`pip install 'mmopsd[tensorboard]'`).",
        factory=list,
    )
    export: str = option(
        "merge",
        "The final model as a transformers folder in `out_dir/model` (config, tokenizer, "
        "generation config, model card): `merge` (LoRA folded into the weights), `adapter` "
        "(peft's adapter files) or `none`. `mmopsd export` makes one from any checkpoint.",
        choices=("merge", "adapter", "none"),
    )
    parallel: str = option(
        "auto",
        "`ddp` (data-parallel over the processes `torchrun` or `accelerate launch` started), "
        "`fsdp` (the same, with parameters, gradients and optimizer state sharded), `none`, or "
        "`auto` (`ddp` when launched on several processes).",
        choices=("auto", "none", "ddp", "fsdp"),
    )
    dist_timeout: float = option(
        600.0,
        "Seconds a collective waits before the run fails (a dead rank ends the run instead of "
        "hanging it).",
        above=0.0,
    )
