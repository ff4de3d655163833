"""Re-render the committed comparisons from their JSON with the current statistics (pooled
Wilson intervals, Newcombe's interval for changes, pairwise probabilities of improvement), no
rerun needed.

Comparisons written before their runs recorded episode counts get them here, from each
comparison's stated setup (the evaluation episodes per seed of every quantity). The table in
the Markdown file (from its caption paragraph to the end of the table) is replaced; the
discussion around it is left as it is.

    python benchmarks/rerender_comparisons.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mmopsd.compare import finalise
from mmopsd.evaluation.report import compare_table

RESULTS = Path(__file__).parent / "results"
# Evaluation episodes per seed of each quantity, as each comparison's Markdown states them.
EPISODES = {
    "compare_keydoor": {"*": 64},
    "compare_keydoor_multiroom": {"*": 64},
    "compare_babyai": {"*": 16, "retain keydoor-other-rule": 32},
}
CAPTION = re.compile(r"^(Mean over seeds|Seeds [0-9, ]+\. Each cell pools)", re.M)


def rerender(name: str) -> None:
    """Rewrite ``name``.json and the table of ``name``.md."""
    path = RESULTS / f"{name}.json"
    summary = json.loads(path.read_text())
    counts = EPISODES[name]
    for arm in summary["arms"].values():
        for run in arm["runs"]:
            run["dir"] = "/".join(Path(run["dir"]).parts[-2:])  # METHOD/seed-S, no machine path
            run.setdefault("episodes", {})
            for key in run["final"]:
                if not key.startswith("retain change "):
                    run["episodes"].setdefault(key, counts.get(key, counts["*"]))
    summary = finalise(summary)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    md = RESULTS / f"{name}.md"
    text = md.read_text()
    start = CAPTION.search(text).start()
    table = text.index("\n|", start)
    end = text.find("\n\n", table)
    end = len(text) if end < 0 else end
    if text.startswith("\n\nProbability of improvement", end):  # an earlier re-render
        end = text.find("\n\n", text.index("\n|", end))
        end = len(text) if end < 0 else end
    md.write_text(text[:start] + compare_table(summary).rstrip("\n") + text[end:])
    print(f"{md}: re-rendered")


if __name__ == "__main__":
    for name in EPISODES:
        rerender(name)
