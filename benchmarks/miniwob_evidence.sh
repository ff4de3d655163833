#!/usr/bin/env bash
# Every MiniWoB++ number of the docs: the comparison of methods, one run at a time
# (benchmarks/miniwob_compare.sh), the gui leaderboard's base student and teacher rows and the
# row of the comparison's opsd checkpoint of seed 1 (benchmarks/leaderboard_gui.sh; the trained
# row first, while that run's weights may still be on the machine), then the
# rest of the recipe search (benchmarks/miniwob_recipe.sh). Each part skips what is finished
# (kept in benchmarks/results) and resumes what was stopped, so the same command continues
# after a kill:
#   LAMBDA=0.5 UNTIL=14:20 setsid nohup bash benchmarks/miniwob_evidence.sh > logs/evidence.log 2>&1 &
# UNTIL (any time `date -d` reads) stops the chain before a part that would not end by then: a
# part killed on a machine that is then given up is lost whole (a run's checkpoints and a row's
# partial results stay in runs/ alone). A run takes 11-52 minutes, a leaderboard row about 30;
# the trained row needs its run's weights, so where that run is kept as metrics alone it is
# trained again first (deterministic: the same model). Hours of 2 cores: run nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
LAMBDA="${LAMBDA:?set LAMBDA, the teacher share the recipe search chose}"
export LAMBDA
KEEP=benchmarks/results/compare_miniwob_runs
BOARD=benchmarks/results/leaderboard_gui.json

fits() {  # MINUTES WHAT: stop here unless MINUTES are left before UNTIL
  [ -n "${UNTIL:-}" ] || return 0
  local left=$((($(date -d "$UNTIL" +%s) - $(date +%s)) / 60))
  if [ "$left" -lt "$1" ]; then
    echo "== $2 needs about $1 minutes, $left are left before $UNTIL: stopping here" >&2
    exit 0
  fi
}
on_board() {  # LABEL [prefix]: a row of the gui board of that name (or starting so)
  [ -f "$BOARD" ] && .venv/bin/python -c '
import json, sys
rows, name, prefix = json.load(open(sys.argv[1])), sys.argv[2], len(sys.argv) > 3
sys.exit(not any(r == name or (prefix and r.startswith(name)) for r in rows))' "$BOARD" "$@"
}

# minutes a gui leaderboard row may take (432 episodes): the trained row took 26
ROW=45
# minutes a run took (opsd 41-52, sft_teacher 18-23, λ 0.5 28, grpo 11), with a margin
declare -A MINUTES=([opsd]=55 [sft_teacher]=30 [lambda]=40 [grpo]=20)
for arm in opsd sft_teacher lambda grpo; do
  dir="$arm"
  [ "$arm" = lambda ] && dir="opsd-lambda$LAMBDA"
  for seed in 0 1; do
    [ -f "$KEEP/$dir/seed-$seed/summary.json" ] && continue
    fits "${MINUTES[$arm]}" "$dir, seed $seed"
    ARMS="$arm" SEEDS="$seed" bash benchmarks/miniwob_compare.sh
  done
done
bash benchmarks/miniwob_compare.sh  # every run finished: the table, curves and JSON

if ! on_board "smollm2-135m + opsd" prefix; then
  trained=runs/miniwob-compare/opsd/seed-1
  if ! compgen -G "$trained/checkpoints/step-*" > /dev/null; then
    fits $((ROW + 50)) "training the opsd run of seed 1 again and its row"
    trained=runs/opsd-again
    mkdir -p "$trained" && cp -n "$KEEP/eval_cache.json" "$trained/eval_cache.json"
    ARMS=opsd SEEDS=1 bash benchmarks/miniwob_compare.sh --out "$trained"
    trained="$trained/opsd/seed-1"
  fi
  fits "$ROW" "the trained row"
  SEED=1 ROWS=trained bash benchmarks/leaderboard_gui.sh "$trained"
fi
if ! on_board "smollm2-135m"; then fits "$ROW" "the student's row"; ROWS=student bash benchmarks/leaderboard_gui.sh; fi
if ! on_board "smollm2-135m + privileged"; then fits "$ROW" "the teacher's row"; ROWS=teacher bash benchmarks/leaderboard_gui.sh; fi
fits 55 "the recipe search"
bash benchmarks/miniwob_recipe.sh lr2e-5 t1.0 topk jsd lora
