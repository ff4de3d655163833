"""The ``mmopsd`` command line: ``demo``, ``train``, ``eval``, ``list``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import NoReturn

from mmopsd.errors import ConfigError, MmopsdError, MmopsdWarning

DEMOS = {
    "keydoor": "keydoor_demo.yaml",
    "keydoor-multiroom": "keydoor_multiroom.yaml",
    "alfworld": "alfworld_expert_plan.yaml",
    "keydoor-skills": "keydoor_skills.yaml",
    "babyai": "babyai_bot.yaml",
}
EVAL_DEFAULTS = {
    "env": "mmopsd/KeyDoor-v0",
    "env_kwargs": {},
    "split": "test",
    "max_new_tokens": 4,
    "max_turns": 1,
}


class _Parser(argparse.ArgumentParser):
    """argparse with the one error format of the CLI: ``mmopsd: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"mmopsd: error: {message} (see `{self.prog} --help`)\n")


def _at_least_one(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set steps=10 --set loss_kwargs.top_k=20",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mmopsd", description="On-policy self-distillation with privileged information."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="self-distillation of the packaged SmolLM2-135M on CPU (KeyDoor by default)"
    )
    demo.add_argument(
        "name",
        nargs="?",
        default="keydoor",
        choices=sorted(DEMOS),
        help="keydoor (one room), keydoor-multiroom (multi-turn), alfworld (expert plans), "
        "keydoor-skills (skills the model writes itself) or babyai (the BabyAI bot's moves)",
    )
    _add_overrides(demo)
    train = sub.add_parser("train", help="train from a YAML config")
    train.add_argument("--config", type=Path, help="YAML file of TrainConfig fields")
    _add_overrides(train)
    ev = sub.add_parser("eval", help="success of a model or a run's checkpoint on an env split")
    ev.add_argument(
        "--model", default=None, help="packaged alias, local directory or cached hub id"
    )
    ev.add_argument(
        "--checkpoint",
        type=Path,
        help="a run directory or one of its checkpoints (the run's config fills unset flags)",
    )
    ev.add_argument("--env", help=f"environment id (default {EVAL_DEFAULTS['env']})")
    ev.add_argument("--split", help="split to evaluate (default test)")
    ev.add_argument(
        "--episodes", type=_at_least_one, help="episodes (default 64; a suite's own per env)"
    )
    ev.add_argument("--suite", help="evaluate a named suite: gui, embodied or all")
    ev.add_argument(
        "--with-privileged",
        action="store_true",
        help="evaluate the teacher: the model with its environment's privileged information",
    )
    ev.add_argument(
        "--leaderboard", type=Path, help="add or replace this model's row in FILE.md (and .png)"
    )
    ev.add_argument("--label", help="the leaderboard row's name (default: model or checkpoint)")
    ev.add_argument("--max-new-tokens", type=_at_least_one)
    ev.add_argument("--max-turns", type=_at_least_one)
    ev.add_argument("--history", type=int, help="exchanges kept after the task (default: all)")
    ev.add_argument("--env-kwargs", help="JSON keyword arguments of the environment")
    ev.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module first (one that registers your own environment)",
    )
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
        "--concurrency", type=_at_least_one, default=16, help="requests in flight (default 16)"
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
    ev.add_argument("--out", type=Path, help="write the result as JSON here")
    ev.add_argument("--markdown", type=Path, help="write the Markdown table here")
    cmp = sub.add_parser(
        "compare",
        help="several methods or configs over several seeds, on equal budgets: one table "
        "and one learning curve",
    )
    cmp.add_argument("--config", type=Path, help="base YAML config (with --methods)")
    cmp.add_argument(
        "--methods",
        help="comma-separated method presets run on --config, e.g. opsd,sft_teacher,grpo",
    )
    cmp.add_argument(
        "--configs", type=Path, nargs="+", help="or: YAML configs compared as they are"
    )
    cmp.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    cmp.add_argument("--out", type=Path, required=True, help="directory of the runs and results")
    _add_overrides(cmp)
    sub.add_parser("list", help="registered losses, teachers, providers, environments and models")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmopsd`` console script."""
    args = _parser().parse_args(argv)
    command = {
        "demo": _demo, "train": _train, "eval": _eval, "compare": _compare, "list": _list
    }[args.command]  # fmt: skip
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return command(args)
        except MmopsdError as err:
            print(f"mmopsd: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """mmopsd's own warnings as one line each; others as Python prints them."""
    if issubclass(category, MmopsdWarning):
        print(f"mmopsd: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _run(config_path: Path | None, args: argparse.Namespace) -> int:
    from mmopsd.config import load_config
    from mmopsd.trainer import train

    config = load_config(config_path, args.overrides)
    summary = train(config, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:  # one summary for a data-parallel run
        return 0
    print()
    print(summary.table())
    minutes = summary.seconds / 60
    print(f"\n{summary.steps} steps in {minutes:.1f} min; outputs in {summary.out_dir}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    with resources.as_file(resources.files("mmopsd.configs") / DEMOS[args.name]) as path:
        return _run(path, args)


def _train(args: argparse.Namespace) -> int:
    return _run(args.config, args)


def _compare(args: argparse.Namespace) -> int:
    from mmopsd.compare import Arm, arms_for_methods, run_compare
    from mmopsd.config import load_data

    if bool(args.methods) == bool(args.configs):
        raise ConfigError("pass either --methods (with --config) or --configs")
    if args.configs:
        arms = [Arm(p.stem, load_data(p, args.overrides)) for p in args.configs]
    else:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        arms = arms_for_methods(load_data(args.config, args.overrides), methods)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    summary = run_compare(arms, seeds, args.out, progress=not args.quiet)
    from mmopsd.compare import table

    print()
    print(table(summary))
    print(f"results in {args.out}/compare.md, compare.png, compare.json")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from mmopsd.config import import_modules
    from mmopsd.evaluation import evaluate
    from mmopsd.rollout import make_envs

    settings = _eval_settings(args)
    import_modules(settings["imports"])
    for out in (args.out, args.markdown, args.leaderboard):
        _check_output(out)
    if args.suite:
        return _eval_suite(args, settings)
    # The environment is checked before the model loads: a mistake costs a second.
    make_envs(settings["env"], 1, split=settings["split"], **settings["env_kwargs"])[0].close()
    spec = _spec(settings)
    policy = _load_for_eval(args, settings)
    provider = None
    if args.with_privileged:
        from mmopsd.privileged import build_provider

        provider = build_provider(settings["provider"], **settings["provider_kwargs"])
    result = evaluate(
        policy,
        settings["env"],
        spec,
        episodes=args.episodes or 64,
        env_kwargs=settings["env_kwargs"],
        split=settings["split"],
        max_turns=settings["max_turns"],
        max_new_tokens=settings["max_new_tokens"],
        provider=provider,
    )
    text = json.dumps(
        {"env": settings["env"], "split": settings["split"], **result.to_dict()}, indent=2
    )
    table = result.table(f"{settings['env']} {settings['split']}")
    print(text)
    print()
    print(table)
    if args.out:
        args.out.write_text(text)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


def _spec(settings: dict):
    """The environment's prompt, with the run's history window when it set one."""
    import dataclasses

    from mmopsd.agents.history import check_window
    from mmopsd.agents.prompting import prompt_for

    spec = prompt_for(settings["env"])
    if settings.get("history") is not None:
        check_window(settings["history"], "--history")
        spec = dataclasses.replace(spec, history=settings["history"])
    return spec


def _load_for_eval(args: argparse.Namespace, settings: dict):
    """The model, with the checkpoint's weights when one is given."""
    from mmopsd import checkpoint
    from mmopsd.policies.loading import load_policy

    if args.checkpoint is not None and not args.checkpoint.exists():
        raise ConfigError(f"--checkpoint {args.checkpoint} does not exist")
    if args.base_url:
        return _load_served(args, settings)
    if args.tokenizer or args.chat:
        flag = "--tokenizer" if args.tokenizer else "--chat"
        raise ConfigError(f"{flag} is for served models: pass --base-url too")
    policy = load_policy(settings["model"])
    if args.checkpoint is not None:
        path = (
            checkpoint.latest(args.checkpoint / "checkpoints")
            or checkpoint.latest(args.checkpoint)
            or args.checkpoint
        )
        checkpoint.load_weights(path, policy.model)
    return policy


def _load_served(args: argparse.Namespace, settings: dict):
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


def _eval_suite(args: argparse.Namespace, settings: dict) -> int:
    """``--suite``: every environment of the suite, a table, optionally a leaderboard row."""
    from mmopsd import leaderboard
    from mmopsd.rollout import make_envs
    from mmopsd.suites import SUITES, run_suite, table

    entries = SUITES.get(args.suite)
    for entry in entries:  # every environment can be made, before the model loads
        make_envs(entry.env, 1, split="test", **entry.env_kwargs)[0].close()
    policy = _load_for_eval(args, settings)

    def say(s) -> None:
        line = f"{s.name}: {s.metric} {s.score:.3f} ± {s.stderr:.3f} ({s.seconds:.0f} s)"
        print(line, flush=True)

    scores = run_suite(
        policy,
        entries,
        with_privileged=args.with_privileged,
        episodes=args.episodes,
        max_turns=args.max_turns,
        progress=say,
    )
    text = table(scores)
    print()
    print(text)
    if args.out:
        args.out.write_text(json.dumps([s.to_dict() for s in scores], indent=2))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.leaderboard:
        label = args.label or str(args.checkpoint or settings["model"])
        if args.with_privileged and not args.label:
            label += " + privileged"
        png = leaderboard.update(args.leaderboard, label, scores)
        print(f"\nleaderboard: {args.leaderboard} (row {label!r}), chart: {png}")
    return 0


def _eval_settings(args: argparse.Namespace) -> dict:
    """Flags, else the run's config (when a run directory is given), else the defaults."""
    run: dict = {}
    if args.checkpoint is not None:
        for candidate in (args.checkpoint, *args.checkpoint.parents[:2]):
            if (candidate / "config.yaml").is_file():
                from mmopsd.config import parse_yaml

                file = candidate / "config.yaml"
                run = parse_yaml(file.read_text(errors="replace"), str(file)) or {}
                if not isinstance(run, dict):
                    raise ConfigError(f"{file} holds no mapping of config fields")
                break
    out = {**EVAL_DEFAULTS, "model": "smollm2-135m", "imports": []}
    out.update(provider="hint", provider_kwargs={})
    out.update(
        {
            k: run[k]
            for k in (
                "model",
                "env",
                "env_kwargs",
                "max_new_tokens",
                "max_turns",
                "imports",
                "provider",
                "provider_kwargs",
                "history",
            )
            if k in run
        }
    )
    if "eval_split" in run:
        out["split"] = run["eval_split"]
    for key in ("model", "env", "split", "max_new_tokens", "max_turns", "history"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    out["imports"] = [*out["imports"], *args.imports]
    if args.env_kwargs is not None:
        try:
            out["env_kwargs"] = json.loads(args.env_kwargs)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--env-kwargs must be JSON, e.g. '{{\"n_rooms\": 3}}': {err}"
            ) from err
    if not isinstance(out["env_kwargs"], dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    return out


def _check_output(path: Path | None) -> None:
    """An output file's folder is created up front; a folder in its place is an error (found
    before the evaluation runs, so its result is never lost)."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; pass a file name for --out/--markdown")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the folder of {path}: {err.strerror}") from err


def _list(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import mmopsd.envs  # noqa: F401
    from mmopsd.losses import WEIGHTINGS, names
    from mmopsd.policies.packaged import PACKAGED
    from mmopsd.privileged import PROVIDERS
    from mmopsd.suites import SUITES
    from mmopsd.teachers import TEACHERS

    print("losses:      ", ", ".join(names()))
    print("weightings:  ", ", ".join(["none", *WEIGHTINGS.names()]))
    print("teachers:    ", ", ".join(TEACHERS.names()))
    print("providers:   ", ", ".join(PROVIDERS.names()))
    print("environments:", ", ".join(sorted(k for k in gym.registry if k.startswith("mmopsd/"))))
    print("models:      ", ", ".join(PACKAGED))
    print("suites:      ", ", ".join(SUITES.names()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
