"""The training configuration: one dataclass, loaded from YAML plus ``key=value`` overrides.

Every default lives here, once. Builders turn these fields into plain constructor arguments;
no component reads the config itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmopsd import methods
from mmopsd.errors import ConfigError

CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": ("auto", "float32", "bfloat16", "float16", "bf16-mixed"),
    "rl": ("none", "add", "route"),
    "rl_advantage": ("grpo", "rloo"),
    "parallel": ("auto", "none", "ddp", "fsdp"),
    "engine": ("hf", "vllm", "openai"),
    "actor": ("student", "teacher"),
}
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


@dataclass
class TrainConfig:
    """Everything a self-distillation run needs.

    Attributes:
        method: ``opsd``, ``gkd``, ``opsd_grpo``, ``sft_teacher``, ``grpo`` or ``dagger``:
            a training method, which fixes the fields defining it (see
            :mod:`mmopsd.methods`); ``custom`` (the default) leaves every field as set.
        imports: modules imported before the run, e.g. the one that registers your own
            environments, providers or losses (``[mypkg.envs]``).
        model: ``smollm2-135m`` (packaged), a local model directory, or a cached hub id.
        dtype: ``auto`` (bf16 on capable GPUs; on a CPU with bf16 matrix units, fp32
            weights whose products run in bf16; fp32 elsewhere), ``float32``, ``bfloat16``,
            ``bf16-mixed`` (fp32 weights, bf16 products; :mod:`mmopsd.policies.precision`).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        env: a registered gymnasium id, e.g. ``mmopsd/KeyDoor-v0``.
        env_kwargs: keyword arguments for ``gymnasium.make`` (both splits).
        tasks: train on a mixture instead of ``env`` alone: entries with ``env`` and
            optionally ``env_kwargs``, ``weight`` (default 1), ``provider``,
            ``provider_kwargs``, ``history`` and ``name`` (what an entry leaves out is the
            run's own setting). Each step's task groups draw their task by weight; held-out
            evaluation reports every task and their mean.
        train_split: the ``split`` argument of training episodes.
        eval_split: the ``split`` argument of held-out episodes.
        provider: privileged-information provider name (e.g. ``hint``).
        provider_kwargs: its options.
        loss: loss name (``forward_kl``, ``reverse_kl``, ``jsd``, ``sampled_reverse_kl``).
        loss_kwargs: loss options (``top_k``, ``top_k_from``, ``tail``, ``clip``, ``beta``,
            ``reduction``, ``baseline``, ``chunk_size``).
        token_weighting: ``none``, ``position`` or ``tip``.
        weighting_kwargs: its options (``power``, ``floor``, ``keep``).
        turn_weighting: ``uniform``, ``discount`` or ``sod`` (weights of the turns of a
            trajectory; each turn's loss is a per-token mean, then turns are averaged per
            trajectory with these weights, then trajectories are averaged).
        turn_weighting_kwargs: its options (``gamma``; ``eps``, ``delta``).
        curriculum_every: TCOD curriculum: distil only the first
            ``curriculum_start + step // curriculum_every`` turns (0: off).
        curriculum_start: turns distilled at the first step.
        rl: the RL term on the environment reward: ``none``, ``add`` (both terms on every
            rollout) or ``route`` (successful rollouts to RL, failed ones to distillation).
        rl_coef: weight of the RL term.
        rl_advantage: ``grpo`` or ``rloo`` group advantage.
        group_size: rollouts per task and seed in a batch (groups for the advantage).
        teacher: ``frozen`` (default), ``live``, ``ema`` or ``sync``.
        teacher_kwargs: ``rate`` for ema, ``every`` for sync.
        lora: train LoRA adapters (peft) instead of all weights.
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_targets: module names to adapt.
        freeze_vision: keep a vision-language model's vision tower fixed (only the language
            model trains).
        steps: optimizer steps.
        batch_size: episodes sampled per step.
        micro_batch_size: sequences per forward/backward pass (gradient accumulation); the
            earlier turns of a conversation that a later turn's sequence holds ride along.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: steps of linear learning-rate warm-up from 0 (transformers'
            ``get_constant_schedule_with_warmup``; 0: the full rate from the first step).
        max_grad_norm: gradient clipping norm (0 disables).
        max_new_tokens: response length cap.
        temperature: sampling temperature of training rollouts (0: greedy rollouts, for
            reproducible runs and exact comparisons).
        top_p: nucleus sampling of training rollouts (1 = off).
        max_turns: turn cap per episode.
        history: keep only the last ``history`` (>= 1) exchanges after the task (None: the
            environment's prompt default, usually the full history).
        save_rollouts: write every step's trajectories to ``out_dir/rollouts``.
        eval_every: evaluate every N steps (0: only before and after).
        eval_episodes: held-out episodes per evaluation.
        eval_teacher: also evaluate the teacher with privileged information.
        eval_batch_size: held-out episodes played (and environments open) at a time; the
            ``ood`` and ``retain`` environments are played together in one batch. None: 32,
            of them at most 8 in browsers (MiniWoB++) for a model on a CPU. Lower it to save
            memory.
        eval_cache: the file (relative to ``out_dir``, or absolute) that keeps evaluations
            that cannot change: the initial model's, the frozen teacher's with a static
            provider, the initial ``ood``/``retain`` results. Each is keyed by everything it
            depends on (model, settings, seeds, code version), so a run (or every run of a
            comparison, which shares one file) computes each once; ``""`` turns it off.
        save_every: checkpoint every N steps (0: only at the end).
        keep_checkpoints: how many checkpoints to keep.
        out_dir: the run directory (metrics, curve, checkpoints).
        resume: continue from the latest checkpoint in ``out_dir`` if there is one.
        seed: seed of episodes, sampling and initialisation.
        parallel: ``ddp`` (data-parallel over the processes that ``torchrun`` or
            ``accelerate launch`` started; see :mod:`mmopsd.parallel`), ``fsdp`` (the same,
            with the student's parameters, gradients and optimizer state sharded by FSDP2),
            ``none`` (one process), or ``auto`` (``ddp`` when launched on several processes).
        dist_timeout: seconds a collective waits before the run fails (a dead rank ends
            the run instead of hanging it).
        engine: what samples the training rollouts: ``hf`` (the student's own ``generate``),
            ``vllm`` (an in-process vLLM on the same GPU, loaded with the student's weights
            after every step; it also runs the evaluations) or ``openai`` (an
            OpenAI-compatible server, which this run does not update).
        engine_kwargs: the engine's options: ``logprobs`` (hf); ``gpu_memory_utilization``,
            ``sleep``, ``dtype``, ``max_model_len``, ``enforce_eager`` ... (vllm);
            ``base_url``, ``model``, ``api_key_env``, ``concurrency``, ``timeout`` (openai).
        actor: who plays the training episodes: ``student`` (on-policy) or ``teacher``
            (the teacher with privileged information; off-policy data for ``sft_teacher``).
        teacher_share: the share λ of each step's episodes (whole groups, rounded) played
            by the teacher with privileged information, the rest by the student, all scored
            the same way: generalized knowledge distillation's mixture of on- and
            off-policy data (0: on-policy self-distillation; ``actor: teacher`` is 1).
        success_only: train only on won episodes (rejection sampling).
        distill_coef: weight of the distillation term (0: RL alone).
        ppo_epochs: optimizer passes over each batch (the RL term's ratio is clipped
            against the rollout-time log-probs from the second pass on).
        clip_eps: PPO clip range of the RL term's ratio.
        kl_coef: weight of the KL penalty to the initial model (k3 estimator on the sampled
            tokens; needs the ``frozen`` teacher, which is the initial model).
        ood: out-of-distribution evaluations, each ``{env, env_kwargs, split, episodes,
            max_turns, name}`` (all optional: the trained environment's values fill in),
            run before training and after the last step (see :mod:`mmopsd.evaluation.tasks`).
        retain: environments never trained on, evaluated before and after in the same
            form, to measure what training made the model forget.
        importance_cap: where the engine returns the log-probs of its samples, every token's
            loss is multiplied by ``min(exp(log S - log p_engine), importance_cap)`` (truncated
            importance sampling; 0 turns it off). The mismatch ``mean |log p_engine - log S|``
            is logged every step.
    """

    method: str = "custom"
    imports: list[str] = field(default_factory=list)
    model: str = "smollm2-135m"
    dtype: str = "auto"
    device: str = "auto"
    env: str = "mmopsd/KeyDoor-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    train_split: str = "train"
    eval_split: str = "test"
    provider: str = "hint"
    provider_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "forward_kl"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    token_weighting: str = "none"
    weighting_kwargs: dict[str, Any] = field(default_factory=dict)
    turn_weighting: str = "uniform"
    turn_weighting_kwargs: dict[str, Any] = field(default_factory=dict)
    curriculum_every: int = 0
    curriculum_start: int = 1
    rl: str = "none"
    rl_coef: float = 1.0
    rl_advantage: str = "grpo"
    group_size: int = 1
    teacher: str = "frozen"
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] = field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "up_proj",
            "down_proj",
            "gate_proj",
        ]
    )
    freeze_vision: bool = False
    steps: int = 40
    batch_size: int = 16
    micro_batch_size: int = 16
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_new_tokens: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_turns: int = 1
    history: int | None = None
    save_rollouts: bool = False
    eval_every: int = 10
    eval_episodes: int = 64
    eval_teacher: bool = True
    eval_batch_size: int | None = None
    eval_cache: str = "eval_cache.json"
    save_every: int = 10
    keep_checkpoints: int = 2
    out_dir: str = "runs/keydoor"
    resume: bool = True
    seed: int = 0
    parallel: str = "auto"
    dist_timeout: float = 600.0
    engine: str = "hf"
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    importance_cap: float = 2.0
    actor: str = "student"
    teacher_share: float = 0.0
    success_only: bool = False
    distill_coef: float = 1.0
    ppo_epochs: int = 1
    clip_eps: float = 0.2
    kl_coef: float = 0.0
    ood: list[dict[str, Any]] = field(default_factory=list)
    retain: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Every field checked now, before anything loads: a bad config costs nothing."""
        self._check_numbers()
        self._check_choices()
        self._check_tasks()
        self._check_players()

    def _check_numbers(self) -> None:
        """Counts, rates and coefficients within their ranges."""
        positive = (
            "steps", "batch_size", "micro_batch_size", "max_new_tokens", "max_turns", "ppo_epochs",
            "eval_batch_size",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 1 or self.batch_size % self.group_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be a multiple of group_size "
                f"({self.group_size})"
            )
        nonnegative = ("curriculum_every", "eval_every", "save_every", "warmup_steps")
        nonnegative += ("max_grad_norm", "weight_decay", "rl_coef", "importance_cap")
        for name in (*nonnegative, "distill_coef", "clip_eps", "kl_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_episodes < 1 or self.keep_checkpoints < 1 or self.curriculum_start < 1:
            raise ConfigError(
                "eval_episodes, keep_checkpoints and curriculum_start must be >= 1, got "
                f"{self.eval_episodes}, {self.keep_checkpoints}, {self.curriculum_start}"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0: greedy), got {self.temperature}")
        if self.dist_timeout <= 0:
            raise ConfigError(f"dist_timeout must be > 0 seconds, got {self.dist_timeout}")
        if not 0.0 <= self.teacher_share <= 1.0:
            raise ConfigError(f"teacher_share must lie in [0, 1], got {self.teacher_share}")

    def _check_choices(self) -> None:
        """Named options: one of their choices, a device, a method and its fields."""
        if "reduction" in self.loss_kwargs:
            raise ConfigError(
                "loss_kwargs.reduction is set by the trainer (per-token mean per turn, turn "
                "weights per trajectory, mean over trajectories); remove it"
            )
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        methods.build_method(self)  # its fixed fields and its own checks

    def _check_tasks(self) -> None:
        """One environment or a mixture, and the history window (each task's entries are
        checked with the environments, before any model loads)."""
        if self.history is not None and self.history < 1:
            raise ConfigError(
                "history must be >= 1 (the newest exchange holds the current observation), "
                f"got {self.history}; leave it unset for the full history"
            )
        default_env = next(f.default for f in dataclasses.fields(self) if f.name == "env")
        if self.tasks and (self.env != default_env or self.env_kwargs):
            raise ConfigError(
                "set either env (one environment) or tasks (a mixture), not both: each "
                "entry of tasks names its own env and env_kwargs"
            )

    def _check_players(self) -> None:
        """Who plays the episodes, and the teacher the KL penalty needs."""
        if self.kl_coef and self.teacher != "frozen":
            raise ConfigError(
                "kl_coef needs teacher: frozen (the initial model the penalty is measured to)"
            )
        if (self.actor == "teacher" or self.teacher_share) and self.engine != "hf":
            raise ConfigError(
                "actor: teacher and teacher_share play with the local teacher; set engine: hf"
            )
        if self.teacher_share and self.actor == "teacher":
            raise ConfigError(
                "teacher_share mixes teacher episodes into the student's; with actor: teacher "
                "every episode is the teacher's already: set one of them"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML and checkpoints)."""
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file and ``key=value`` overrides.

    Values of overrides are parsed as YAML (``steps=10``, ``lora=true``,
    ``loss_kwargs={top_k: 20}``); dotted keys set one entry of a dict field
    (``loss_kwargs.top_k=20``).
    """
    return from_dict(load_data(path, overrides))


def load_data(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The fields a YAML file and ``key=value`` overrides set, before any checking (see
    :func:`load_config`)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        loaded = parse_yaml(_read_text(path), str(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} must hold a mapping of config fields, got {type(loaded).__name__}"
            )
        data.update(loaded)
    return apply_overrides(data, overrides or [])


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key=value`` (a YAML value; ``head.key`` sets inside a mapping)
    set in place; returns ``data``."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key=value")
        value = parse_yaml(raw, f"the value of --set {key.strip()}")
        head, _, sub = key.strip().partition(".")
        if sub:
            data.setdefault(head, {})
            if not isinstance(data[head], dict):
                raise ConfigError(f"{head} is not a mapping, so {key} cannot be set")
            data[head][sub] = value
        else:
            data[head] = value
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not a UTF-8 text file ({err.reason}); pass a YAML file"
        ) from err
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err


def parse_yaml(text: str, where: str) -> Any:
    """YAML text, or a :class:`ConfigError` naming the line and column of the mistake."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}") from err


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and type-check a :class:`TrainConfig`; unknown keys suggest the closest field,
    and a ``method`` fills in its preset's fields (:func:`mmopsd.methods.expand`)."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    data = methods.expand(data)
    hints = typing.get_type_hints(TrainConfig)
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            tip = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config field {key!r}{tip}")
        clean[key] = _coerce(key, value, hints[key])
    return TrainConfig(**clean)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads 2e-5 (no dot) as a string
        except ValueError:
            raise ConfigError(f"config field {key!r} must be a number, got {value!r}") from None
    expected = origin or hint
    if origin in (types.UnionType, typing.Union):
        expected = tuple(typing.get_origin(a) or a for a in typing.get_args(hint))
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        want = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"config field {key!r} must be {want}, got {value!r}")
    return value


def import_modules(names: list[str]) -> None:
    """Import each module (they register environments, providers, losses, ...)."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(
                f"cannot import {name!r} (from imports): {err}; is its package installed and "
                "on the Python path?"
            ) from err
