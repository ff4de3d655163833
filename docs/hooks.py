"""mkdocs hook: serve ``benchmarks/`` under ``bench/`` and ``examples/`` under ``examples/``, so
that pages link to the committed results and scripts themselves rather than copies."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).parents[1]
SERVED = {"benchmarks": "bench", "examples": "examples"}


def on_files(files, config):
    """Add every file of the served folders (caches and generated run data aside)."""
    for folder, prefix in SERVED.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                uri = f"{prefix}/{path.relative_to(ROOT / folder).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
