"""``method:`` presets: each names a training method and expands to plain config fields.

=============  ==========================================================================
``custom``     no preset (the default): every field as the config sets it; the default
               fields are those of ``opsd``.
``opsd``       on-policy self-distillation (the default): the student plays, the teacher
               with privileged information scores its tokens, no RL term.
``opsd_grpo``  the same plus GRPO on the environment reward (``rl: add``, or ``route``).
``sft_teacher`` off-policy distillation, the seeds' main baseline: the teacher with
               privileged information plays (``actor: teacher``; greedy with
               ``temperature: 0``) and the student learns its response ids by cross-entropy
               under the student's own context (``loss: sft``); ``success_only: true``
               keeps only won episodes (rejection sampling).
``grpo``       RL on the reward alone: no distillation (``distill_coef: 0``), group-relative
               advantages, the PPO-style clipped ratio (``clip_eps``) over ``ppo_epochs``
               optimizer passes per batch, and an optional KL penalty to the initial model
               (``kl_coef``, with the ``frozen`` teacher as the initial model).
=============  ==========================================================================

A preset fixes the fields that define its method; a config that sets one of them to another
value is an error naming both. Every other field stays free (``group_size``, ``lr``, ...).
``config.yaml`` records the method and its expanded fields.
"""

from __future__ import annotations

from typing import Any

from mmopsd.errors import ConfigError

# Per method: field -> allowed values (the first is the one set when the config is silent).
PRESETS: dict[str, dict[str, tuple[Any, ...]]] = {
    "custom": {},  # no preset: every field as the config sets it (the defaults are opsd's)
    "opsd": {"actor": ("student",), "rl": ("none",), "distill_coef": (1.0,)},
    "opsd_grpo": {"actor": ("student",), "rl": ("add", "route"), "distill_coef": (1.0,)},
    "sft_teacher": {
        "actor": ("teacher",), "loss": ("sft",), "rl": ("none",), "distill_coef": (1.0,),
        "token_weighting": ("none",), "engine": ("hf",),
    },
    "grpo": {"actor": ("student",), "rl": ("add",), "distill_coef": (0.0,), "teacher": ("frozen",)},
}  # fmt: skip


def expand(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its ``method`` preset's fields filled in (unchanged without one)."""
    method = data.get("method")
    if method is None:
        return data
    if method not in PRESETS:
        raise ConfigError(f"method must be one of {', '.join(PRESETS)}, got {method!r}")
    out = dict(data)
    for key, allowed in PRESETS[method].items():
        if key not in out:
            out[key] = allowed[0]
        elif out[key] not in allowed:
            shown = " or ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"method {method} sets {key}: {shown}, but the config sets {key}: {out[key]!r}; "
                f"remove {key} from the config or pick another method"
            )
    return out


def check(config: Any) -> None:
    """Raise a :class:`ConfigError` if ``config``'s fields contradict its method (a config
    built field by field in Python rather than through :func:`expand`)."""
    for key, allowed in PRESETS[config.method].items():
        if getattr(config, key) not in allowed:
            raise ConfigError(
                f"method {config.method} needs {key} in {list(allowed)}, got "
                f"{getattr(config, key)!r}; build the config with mmopsd.config.from_dict "
                "(it fills the method's fields) or set them"
            )
