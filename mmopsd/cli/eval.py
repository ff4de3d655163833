"""``mmopsd eval``: success of a model, a run's checkpoint or a served model on an
environment's split or a whole suite, optionally as a leaderboard row."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmopsd.cli.args import at_least_one
from mmopsd.config import TrainConfig, choices
from mmopsd.errors import ConfigError, writable_file
from mmopsd.evaluation.tasks import EvalTask

DEFAULT = EvalTask()  # what an evaluation without flags or a run's config measures
DEFAULT_MODEL = "smollm2-135m"


def add_eval(sub: argparse._SubParsersAction) -> None:
    """The ``eval`` command's arguments."""
    ev = sub.add_parser("eval", help="success of a model or a run's checkpoint on an env split")
    ev.add_argument(
        "--model", default=None, help="packaged alias, local directory or cached hub id"
    )
    ev.add_argument(
        "--checkpoint",
        type=Path,
        help="a run directory or one of its checkpoints (the run's config fills unset flags)",
    )
    ev.add_argument("--env", help=f"environment id (default {DEFAULT.env})")
    ev.add_argument(
        "--split",
        help="split to evaluate: validation (for choices) or test (final numbers; the default)",
    )
    ev.add_argument(
        "--episodes", type=at_least_one, help="episodes (default 64; a suite's own per env)"
    )
    ev.add_argument("--suite", help="evaluate a named suite: gui, embodied or all")
    _add_teacher(ev)
    ev.add_argument(
        "--leaderboard", type=Path, help="add or replace this model's row in FILE.md (and .png)"
    )
    ev.add_argument("--label", help="the leaderboard row's name (default: model or checkpoint)")
    ev.add_argument(
        "--batch-size",
        type=at_least_one,
        help="episodes played (and environments open) at a time, across a suite's "
        "environments; lower it to save memory (default: 32, on a CPU at most 8 in browsers)",
    )
    ev.add_argument(
        "--dtype",
        choices=choices("model", "dtype"),
        help="precision (default: the run's, else auto: bf16 on capable GPUs, bf16-mixed on "
        "CPUs with bf16 matrix units, float32 elsewhere)",
    )
    ev.add_argument("--max-new-tokens", type=at_least_one)
    ev.add_argument("--max-turns", type=at_least_one)
    ev.add_argument("--history", type=int, help="exchanges kept after the task (default: env's)")
    ev.add_argument("--env-kwargs", help="JSON keyword arguments of the environment")
    ev.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module first (one that registers your own environment)",
    )
    _add_served(ev)
    ev.add_argument(
        "--episodes-out",
        type=Path,
        metavar="FILE",
        help="keep every episode: FILE.jsonl (turn by turn: observation, response, action, "
        "reward, privileged information), FILE.html to look at them, images in FILE_frames/",
    )
    ev.add_argument("--out", type=Path, help="write the result as JSON here")
    ev.add_argument("--markdown", type=Path, help="write the Markdown table here")
    ev.set_defaults(run=run_eval)


def _add_teacher(ev: argparse.ArgumentParser) -> None:
    """The arguments that evaluate the teacher (the model with privileged information)."""
    ev.add_argument(
        "--with-privileged",
        action="store_true",
        help="evaluate the teacher: the model with its environment's privileged information",
    )
    ev.add_argument(
        "--provider",
        help="the provider of the teacher's view with --with-privileged (default: the run's, "
        "else hint), e.g. reference",
    )
    ev.add_argument(
        "--provider-kwargs",
        metavar="JSON",
        help='its options with --with-privileged, e.g. \'{"kind": "next_action"}\'',
    )


def _add_served(ev: argparse.ArgumentParser) -> None:
    served = ev.add_argument_group("served models (any OpenAI-compatible server)")
    served.add_argument(
        "--base-url", help="evaluate the model served here, e.g. http://127.0.0.1:8000/v1"
    )
    served.add_argument(
        "--tokenizer",
        help="local copy of the served model's tokenizer (default: --model, when it is local)",
    )
    served.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default OPENAI_API_KEY; never printed)",
    )
    served.add_argument(
        "--concurrency", type=at_least_one, default=16, help="requests in flight (default 16)"
    )
    served.add_argument(
        "--request-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="seconds per request before a retry (default 120)",
    )
    served.add_argument(
        "--chat",
        action="store_true",
        help="send chat messages, images as PNG data URLs (vision models need it; the "
        "server applies its own chat template) instead of exact prompt ids",
    )


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate one environment (or ``--suite``); print and write the results."""
    from mmopsd.agents.history import check_window
    from mmopsd.agents.prompting import prompt_for
    from mmopsd.config import import_modules
    from mmopsd.evaluation import evaluate
    from mmopsd.rollout import check_env

    settings = _settings(args)
    import_modules(settings["imports"])
    for out in (args.out, args.markdown, args.leaderboard):
        _check_output(out)
    provider = _provider(args, settings)  # checked, like everything, before the model loads
    recorder = _recorder(args, settings, provider)
    if args.suite:
        return _eval_suite(args, settings)
    # The environment is checked before the model loads: a mistake costs a second.
    check_env(settings["env"], settings["split"], settings["env_kwargs"])
    if settings["history"] is not None:
        check_window(settings["history"], "--history")
    spec = prompt_for(settings["env"], settings["history"])
    policy = _load(args, settings)
    result = evaluate(
        policy,
        settings["env"],
        spec,
        episodes=args.episodes or DEFAULT.episodes,
        env_kwargs=settings["env_kwargs"],
        split=settings["split"],
        max_turns=settings["max_turns"],
        max_new_tokens=settings["max_new_tokens"],
        provider=provider,
        batch_size=args.batch_size,
        on_episode=None if recorder is None else recorder.add,
    )
    if recorder is not None:
        page = recorder.write({"success": result.success, "invalid rate": result.invalid_rate})
        print(f"episodes in {recorder.path}; look at them in {page}")
    text = json.dumps(
        {"env": settings["env"], "split": settings["split"], **result.to_dict()}, indent=2
    )
    table = result.table(f"{settings['env']} {settings['split']}")
    print(text)
    print()
    print(table)
    _write(args, text, table)
    return 0


def _provider(args: argparse.Namespace, settings: dict[str, Any]):
    """The teacher's provider for ``--with-privileged`` (None without it); ``--provider``
    and ``--provider-kwargs`` without it, or with a suite, are errors that say why."""
    from mmopsd.privileged import build_provider

    named = args.provider is not None or args.provider_kwargs is not None
    if named and not args.with_privileged:
        raise ConfigError(
            "--provider and --provider-kwargs choose the teacher's view: pass --with-privileged too"
        )
    if named and args.suite:
        raise ConfigError(
            "--provider applies to one environment; each environment of a suite uses its own "
            "(evaluate one environment with --env to choose it)"
        )
    if not args.with_privileged or args.suite:
        return None
    return build_provider(settings["provider"], **settings["provider_kwargs"])


def _recorder(args: argparse.Namespace, settings: dict[str, Any], provider: Any):
    """The keeper of ``--episodes-out``'s episodes (None without it): each turn also records
    the lines the teacher's view adds (the provider of ``--with-privileged``, else the
    run's or the environment's default)."""
    from mmopsd.evaluation.episodes import EpisodeRecorder, check_output
    from mmopsd.privileged import build_provider

    if args.episodes_out is None:
        return None
    if args.suite:
        raise ConfigError("--episodes-out keeps one environment's episodes: pass --env")
    check_output(args.episodes_out)
    view = provider or build_provider(settings["provider"], **settings["provider_kwargs"])
    who = args.label or str(args.checkpoint or args.base_url or settings["model"])
    title = f"{who} on {settings['env']} ({settings['split']} split)"
    if provider is not None:
        title += ", with privileged information"
    return EpisodeRecorder(args.episodes_out, title, teacher_view=view)


def _write(args: argparse.Namespace, text: str, table: str) -> None:
    if args.out:
        args.out.write_text(text)
    if args.markdown:
        args.markdown.write_text(table + "\n")


def _load(args: argparse.Namespace, settings: dict[str, Any]):
    """The model, with the checkpoint's weights when one is given."""
    from mmopsd.policies.loading import load_policy
    from mmopsd.training import checkpoint

    if args.checkpoint is not None and not args.checkpoint.exists():
        raise ConfigError(f"--checkpoint {args.checkpoint} does not exist")
    if args.base_url:
        return _load_served(args, settings)
    if args.tokenizer or args.chat:
        flag = "--tokenizer" if args.tokenizer else "--chat"
        raise ConfigError(f"{flag} is for served models: pass --base-url too")
    policy = load_policy(settings["model"], dtype=settings["dtype"])
    if args.checkpoint is not None:
        path = (
            checkpoint.latest(args.checkpoint / "checkpoints")
            or checkpoint.latest(args.checkpoint)
            or args.checkpoint
        )
        checkpoint.load_weights(path, policy.model)
    return policy


def _load_served(args: argparse.Namespace, settings: dict[str, Any]):
    """The model behind ``--base-url``: weights stay on the server, so a checkpoint makes no
    sense here."""
    from mmopsd.policies.served import load_served_policy

    if args.checkpoint is not None:
        raise ConfigError(
            "--checkpoint and --base-url exclude each other: serve the checkpoint's weights "
            "and pass --base-url, or evaluate the checkpoint locally without --base-url"
        )
    if args.request_timeout <= 0:
        raise ConfigError(f"--request-timeout must be > 0, got {args.request_timeout}")
    return load_served_policy(
        args.base_url,
        settings["model"],
        tokenizer=args.tokenizer,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout=args.request_timeout,
        chat=args.chat,
    )


def _eval_suite(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """``--suite``: every environment of the suite, a table, optionally a leaderboard row."""
    from mmopsd.evaluation import leaderboard
    from mmopsd.evaluation.report import suite_table
    from mmopsd.evaluation.suites import SUITES, run_suite
    from mmopsd.rollout import check_env

    tasks = SUITES.get(args.suite)
    for task in tasks:  # every environment can be made, before the model loads
        check_env(task.env, task.split, dict(task.env_kwargs))
    policy = _load(args, settings)

    def say(s) -> None:
        line = f"{s.name}: {s.metric} {s.score:.3f} ± {s.stderr:.3f} ({s.seconds:.0f} s)"
        print(line, flush=True)

    scores = run_suite(
        policy,
        tasks,
        with_privileged=args.with_privileged,
        episodes=args.episodes,
        max_turns=args.max_turns,
        progress=say,
        batch_size=args.batch_size,
    )
    table = suite_table(scores)
    print()
    print(table)
    _write(args, json.dumps([s.to_dict() for s in scores], indent=2), table)
    if args.leaderboard:
        label = args.label or str(args.checkpoint or settings["model"])
        if args.with_privileged and not args.label:
            label += " + privileged"
        png = leaderboard.update(args.leaderboard, label, scores)
        print(f"\nleaderboard: {args.leaderboard} (row {label!r}), chart: {png}")
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags, else the run's config (when a run directory is given), else the defaults."""
    run = _run_config(args.checkpoint) if args.checkpoint is not None else {}
    out: dict[str, Any] = {
        "model": DEFAULT_MODEL,
        "dtype": "auto",
        "imports": [],
        "history": None,
        "env": DEFAULT.env,
        "env_kwargs": dict(DEFAULT.env_kwargs),
        "split": DEFAULT.split,
        "max_new_tokens": DEFAULT.max_new_tokens,
        "max_turns": DEFAULT.max_turns,
        "provider": DEFAULT.provider,
        "provider_kwargs": dict(DEFAULT.provider_kwargs),
    }
    out.update(run)
    for key in ("model", "dtype", "env", "split", "max_new_tokens", "max_turns", "history"):
        if vars(args)[key] is not None:
            out[key] = vars(args)[key]
    out["imports"] = [*out["imports"], *args.imports]
    if args.provider is not None:  # another provider: the run's options were for its own
        out["provider"], out["provider_kwargs"] = args.provider, {}
    if args.env_kwargs is not None:
        out["env_kwargs"] = _json_object("--env-kwargs", args.env_kwargs, '{"n_rooms": 3}')
    if args.provider_kwargs is not None:
        out["provider_kwargs"] = _json_object(
            "--provider-kwargs", args.provider_kwargs, '{"kind": "next_action"}'
        )
    if not isinstance(out["env_kwargs"], dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    return out


def _json_object(flag: str, text: str, example: str) -> dict[str, Any]:
    """A flag's JSON object, or an error naming the flag with an example."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag} must be JSON, e.g. '{example}': {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, e.g. '{example}', got {text!r}")
    return value


def _run_config(checkpoint: Path) -> dict[str, Any]:
    """What the config of the run that ``checkpoint`` (a run or checkpoint directory)
    belongs to contributes to its evaluation (its first task's environment, provider and
    history); empty when no ``config.yaml`` is found. A run written before the config had
    sections loads through :func:`~mmopsd.config.migrate`."""
    from mmopsd.config import run_config_near

    found = run_config_near(checkpoint)
    return {} if found is None else _run_fields(found[1])


def _run_fields(config: TrainConfig) -> dict[str, Any]:
    """The settings of an evaluation that a trained run's config fixes."""
    task = config.tasks[0]
    return {
        "model": config.model.name, "dtype": config.model.dtype, "imports": config.imports,
        "env": task.env, "env_kwargs": dict(task.env_kwargs), "provider": task.provider,
        "provider_kwargs": dict(task.provider_kwargs), "history": task.history,
        "split": config.evaluation.split, "max_new_tokens": config.rollout.max_new_tokens,
        "max_turns": config.rollout.max_turns,
    }  # fmt: skip


def _check_output(path: Path | None) -> None:
    """An output file's folder is created up front; a folder in its place is an error (found
    before the evaluation runs, so its result is never lost)."""
    if path is not None:
        writable_file(path, "pass a file name for --out/--markdown")
