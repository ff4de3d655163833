"""llama.cpp's server as a second real server: the completions and chat paths of
``mmopsd eval --base-url`` against ``llama_cpp.server`` serving the packaged SmolLM2 GGUF.

KeyDoor, 64 greedy held-out episodes, first with exact prompt ids (``/v1/completions``), then
with ``--chat`` (the server's own chat template). llama.cpp's server answers 200 to
``continue_final_message`` and ignores it, so chat mode must notice that from the probe's
answer and ask for the answer's start in words instead. Pass: the chat success lies inside
the completions success's 95% interval, and the continuation probe said no.

    pip install 'llama-cpp-python[server]'   # a source build, about 5 minutes on 2 cores
    python benchmarks/llama_cpp_chat.py      # writes results/llama_cpp_chat.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmopsd.engines.local_server import llama_cpp_serve
from mmopsd.engines.served import OpenAIEngine
from mmopsd.policies.packaged import gguf_file

RESULTS = Path(__file__).parent / "results"
ALIAS = "smollm2-gguf"


def evaluate(url: str, episodes: int, out: Path, chat: bool) -> tuple[dict, float, list[str]]:
    """One ``mmopsd eval`` against the server: its JSON, seconds and command."""
    command = [
        "mmopsd", "eval", "--base-url", url, "--model", ALIAS, "--tokenizer", "smollm2-135m",
        "--env", "mmopsd/KeyDoor-v0", "--episodes", str(episodes), "--out", str(out),
        *(["--chat"] if chat else []),
    ]  # fmt: skip
    start = time.perf_counter()
    executable = [sys.executable, "-m", "mmopsd", *command[1:]]
    subprocess.run(executable, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text()), time.perf_counter() - start, command


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=64)
    args = ap.parse_args()
    import llama_cpp

    rows = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        llama_cpp_serve(gguf_file("smollm2-135m"), ALIAS, log=Path(tmp) / "server.log") as url,
    ):
        for mode in ("completions", "chat"):
            result, seconds, command = evaluate(
                url, args.episodes, Path(tmp) / f"{mode}.json", chat=mode == "chat"
            )
            rows[mode] = {
                "result": result,
                "seconds": round(seconds, 1),
                "command": " ".join(command),
            }
        engine = OpenAIEngine(url, ALIAS)
        continues = engine.continues()
    done, chat = rows["completions"]["result"], rows["chat"]["result"]
    inside = done["ci_low"] <= chat["success"] <= done["ci_high"]
    summary = {
        "meta": {
            "server": f"llama-cpp-python {llama_cpp.__version__}",
            "model": "SmolLM2-135M-Instruct Q4_1 GGUF (packaged)",
            "env": "mmopsd/KeyDoor-v0",
            "episodes": args.episodes,
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "continues_final_message": continues,
        "rows": rows,
        "chat_inside_completions_interval": inside,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llama_cpp_chat.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "llama_cpp_chat.md").write_text(report(summary))
    print(report(summary))


def report(summary: dict) -> str:
    """The Markdown result."""
    lines = [
        "# llama.cpp's server: completions and chat mode on KeyDoor",
        "",
        f"{summary['meta']['server']} serving {summary['meta']['model']}; "
        f"{summary['meta']['episodes']} greedy held-out KeyDoor episodes per mode; "
        "written by `python benchmarks/llama_cpp_chat.py`.",
        "",
        "| mode | success | 95% interval | invalid rate | seconds | command |",
        "|---|---|---|---|---|---|",
    ]
    for mode, row in summary["rows"].items():
        r = row["result"]
        lines.append(
            f"| {mode} | {r['success']:.3f} | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
            f"{r['invalid_rate']:.3f} | {row['seconds']} | `{row['command']}` |"
        )
    verdict = "inside" if summary["chat_inside_completions_interval"] else "**outside**"
    lines += [
        "",
        f"The continuation probe found that the server continues a final assistant message: "
        f"**{summary['continues_final_message']}**. Chat mode's success is {verdict} the "
        "completions mode's 95% interval.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
