"""Imports flow one way: each module imports only its own layer and those below it, and no
modules import each other in a circle. Layers, from the bottom:

core (errors, registry, types, checks, allocator, parallel) < config (plain dataclasses) <
agent (how a model talks: prompts, history, action parsing) < env < engine < model (policies) <
provider < rollout < loss < method < evaluation < tracking < training (with export) < top
(compare, cli, the package's front door).

Every import counts (module level or inside a function) but those under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"mmopsd": "mmopsd", "envs": "mmopsd.envs", "agents": "mmopsd.agents",
            "privileged": "mmopsd.privileged"}  # fmt: skip
LAYERS = [
    ("core", ["mmopsd.errors", "mmopsd.registry", "mmopsd.types", "mmopsd.checks",
              "mmopsd.allocator", "mmopsd.parallel"]),
    ("config", ["mmopsd.config", "mmopsd.configs"]),  # plain dataclasses: every layer reads it
    ("agent", ["mmopsd.agents"]),
    ("env", ["mmopsd.envs"]),
    ("engine", ["mmopsd.engines"]),
    ("model", ["mmopsd.policies"]),
    ("provider", ["mmopsd.privileged"]),
    ("rollout", ["mmopsd.rollout", "mmopsd.engines.build"]),  # the engine factory loads models
    ("loss", ["mmopsd.losses"]),
    ("method", ["mmopsd.methods"]),
    ("evaluation", ["mmopsd.evaluation"]),
    ("tracking", ["mmopsd.tracking"]),
    ("training", ["mmopsd.training", "mmopsd.export"]),
    ("top", ["mmopsd.compare", "mmopsd.cli", "mmopsd.testing", "mmopsd.__main__", "mmopsd"]),
]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(f): f for top in PACKAGES for f in (ROOT / top).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The library modules ``path`` imports (``from X import Y`` counts as X.Y where that is
    a module, else X)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*up, *([child.module] if child.module else [])])
                subs = {f"{base}.{a.name}" for a in child.names} & known
                found.update(subs or {base})
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int:
    matches = [
        (len(prefix), i)
        for i, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
        for m, deps in _graph().items()
        for d in sorted(deps)
        if _layer(d) > _layer(m)
    ]
    assert not upward, "imports that run back up:\n" + "\n".join(sorted(upward))


def test_no_modules_import_each_other_in_a_circle():
    graph = _graph()
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not circles, f"modules importing each other in a circle: {circles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The check itself can fail: a core module importing training is flagged."""
    known = {"mmopsd.errors", "mmopsd.training.loop"}
    fake = tmp_path / "errors.py"
    fake.write_text("def f():\n    from mmopsd.training.loop import train\n")
    deps = _imports(fake, "mmopsd.errors", known)
    assert deps == {"mmopsd.training.loop"}
    assert _layer("mmopsd.training.loop") > _layer("mmopsd.errors")
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"], ["c"]]


def test_loading_a_config_imports_neither_torch_nor_the_library():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from mmopsd.config import load_config; "
        "load_config('mmopsd/configs/miniwob_opsd.yaml', ['optimizer.steps=3']); "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or "
        "m.startswith('mmopsd'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout  # fmt: skip
    loaded = json.loads(out)
    assert "torch" not in loaded
    assert [m for m in loaded if not m.startswith("mmopsd.config")] == ["mmopsd", "mmopsd.errors"]
