#!/usr/bin/env bash
# Throughput before and after, alternated one run at a time, each in a fresh process:
#   bash benchmarks/throughput_ab.sh BEFORE_COMMIT [AFTER_COMMIT] [REPEATS] [MEASURES]
# Both commits (AFTER_COMMIT: HEAD) are checked out into worktrees under .bench/, so the
# checkout can change while the script runs. Results go to
# benchmarks/results/throughput_{before,after}.json (runs appended: a stopped script keeps
# what it measured; start it again to add runs) and throughput.md.
# LEADERBOARD=1 also times the all row once a round (after only); SIDES=after times only the
# after side (a round that completes the after runs). Each run records the commit it timed.
# Run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$(git rev-parse --short "${1:?the commit before the changes}")
after=$(git rev-parse --short "${2:-HEAD}")
repeats=${3:-3}
measures=${4:-eval:click-button,eval:babyai-gotolocal,train:click-button,train:babyai-gotolocal}
for c in "$before" "$after"; do
  [ -d ".bench/$c" ] || git worktree add --detach ".bench/$c" "$c" > /dev/null
done
py=.venv/bin/python
for rep in $(seq "$repeats"); do
  for m in ${measures//,/ }; do
    echo "== run $rep: $m" >&2
    for side in ${SIDES:-before after}; do
      code=$before; [ "$side" = after ] && code=$after
      $py benchmarks/throughput.py --label "$side" --code ".bench/$code" --only "$m" --repeats 1 \
        --append
    done
  done
  if [ "${LEADERBOARD:-0}" != 0 ]; then  # the all row, after only (before: about 29 min)
    echo "== run $rep: leaderboard:all" >&2
    $py benchmarks/throughput.py --label after --code ".bench/$after" --only none \
      --repeats 0 --leaderboard --leaderboard-repeats 1 --append
  fi
done
$py benchmarks/throughput.py --table
