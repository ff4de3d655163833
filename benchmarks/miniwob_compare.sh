#!/usr/bin/env bash
# The MiniWoB++ comparison on mmopsd/configs/miniwob_opsd.yaml: opsd, opsd with the teacher
# playing a share LAMBDA of the episodes (the best of the recipe search), sft_teacher and grpo
# (groups of 4 episodes per page), each on the same episodes, seeds 0 and 1.
#   bash benchmarks/miniwob_compare.sh                        # every run; LAMBDA=0.5 by default
#   ARMS=sft_teacher SEEDS=0 bash benchmarks/miniwob_compare.sh   # some runs only
# ARMS takes opsd, sft_teacher, lambda and grpo. Runs go one after another in
# runs/miniwob-compare/<arm>/seed-<s>; a killed comparison continues where it stopped with the
# same command. Each finished run's metrics and config (kB, not its GB of checkpoints) and the
# runs' shared evaluation cache are kept in benchmarks/results/compare_miniwob_runs and put
# back into runs/ before the comparison starts, so it continues on another machine too.
# Results (every arm and seed): runs/miniwob-compare/compare.md, copied to
# benchmarks/results/compare_miniwob.{md,json,png}. Hours of 2 cores: run nothing else
# meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
whole=1
[ -n "${ARMS:-}${SEEDS:-}" ] && whole=0
LAMBDA="${LAMBDA:-0.5}"
SEEDS="${SEEDS:-0,1}"
ARMS="${ARMS:-opsd sft_teacher lambda grpo}"
OUT=runs/miniwob-compare
KEEP=benchmarks/results/compare_miniwob_runs
FILES=(metrics.jsonl config.yaml summary.json)

copy_runs() {  # FROM TO: every finished run (one with summary.json) not yet in TO
  local run dest f
  for run in "$1"/*/seed-*; do
    [ -f "$run/summary.json" ] || continue
    dest="$2/${run#"$1"/}"
    [ -f "$dest/summary.json" ] && continue
    mkdir -p "$dest"
    for f in "${FILES[@]}"; do cp "$run/$f" "$dest/$f"; done
    echo "== kept $run in $dest" >&2
  done
}

keep() {  # the finished runs and the shared evaluation cache (the first evaluation, 10 min)
  copy_runs "$OUT" "$KEEP"
  [ -f "$OUT/eval_cache.json" ] && cp "$OUT/eval_cache.json" "$KEEP/eval_cache.json"
  return 0
}

methods=()
arms=()
for arm in $ARMS; do
  case "$arm" in
    opsd | sft_teacher) methods+=("$arm") ;;
    lambda) arms+=(--arm "opsd-lambda$LAMBDA" method.name=gkd "method.teacher_share=$LAMBDA") ;;
    grpo) arms+=(--arm grpo method.name=grpo method.group_size=4) ;;
    *) echo "unknown arm '$arm' in ARMS: use opsd, sft_teacher, lambda, grpo" >&2; exit 2 ;;
  esac
done
if [ "${#methods[@]}" -gt 0 ]; then
  arms=(--methods "$(IFS=,; echo "${methods[*]}")" "${arms[@]}")
fi

copy_runs "$KEEP" "$OUT"
[ -f "$KEEP/eval_cache.json" ] && [ ! -f "$OUT/eval_cache.json" ] && mkdir -p "$OUT" &&
  cp "$KEEP/eval_cache.json" "$OUT/eval_cache.json"
(while sleep 60; do keep; done) &
keeper=$!
trap 'kill "$keeper" 2>/dev/null || true; keep' EXIT
.venv/bin/mmopsd compare --config mmopsd/configs/miniwob_opsd.yaml "${arms[@]}" \
  --seeds "$SEEDS" --out "$OUT" --quiet "$@"
[ "$whole" = 1 ] || exit 0
RESULT=benchmarks/results/compare_miniwob
# The committed table keeps its setup and discussion: everything above the generated part
# (which starts with its "Seeds ..." line) stays, the rest is the new table.
discussion=""
[ -f "$RESULT.md" ] && discussion="$(sed '/^Seeds [0-9]/,$d' "$RESULT.md")"
{ [ -n "$discussion" ] && printf '%s\n\n' "$discussion"; cat "$OUT/compare.md"; } > "$RESULT.md.new"
mv "$RESULT.md.new" "$RESULT.md"
for ext in json png; do cp "$OUT/compare.$ext" "$RESULT.$ext"; done
