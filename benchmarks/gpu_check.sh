#!/usr/bin/env bash
# One GPU check of mmopsd, for a borrowed GPU machine that has its own torch and transformers
# and no network. It runs the GPU-marked tests that need no vLLM (tests/test_gpu.py), then
# benchmarks/gpu_check.py (bf16 training steps, generation speed, the distillation/SFT ratio,
# DDP and FSDP2 over NCCL), and writes one JSON.
#
#   bash benchmarks/gpu_check.sh [--dry] [OUT.json]
#
# --dry rehearses everything on the CPU in seconds (CI runs it). Wheels the machine lacks
# (gymnasium, farama-notifications) travel in .whl/ and are installed first when present.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=""
if [ "${1:-}" = "--dry" ]; then dry="--dry"; shift; fi
out="${1:-benchmarks/results/gpu_check.json}"
python="${PYTHON:-python3}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$python" -c "import mmopsd.envs" 2>/dev/null; then  # the plug-in folders need the install
  "$python" -m pip install -q --no-index --no-deps --no-build-isolation -e .
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
set +e
"$python" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py -o addopts="" > /tmp/gpu_tests.log 2>&1
status=$?
set -e
tail -5 /tmp/gpu_tests.log
summary=$(tail -1 /tmp/gpu_tests.log)
count() { echo "$summary" | grep -o "[0-9]* $1" | grep -o "[0-9]*" || echo 0; }
tests="{\"exit\": $status, \"passed\": $(count passed), \"failed\": $(count failed), \"skipped\": $(count skipped)}"
"$python" benchmarks/gpu_check.py $dry --out "$out" --tests "$tests"
if [ -n "$dry" ]; then exit 0; fi
[ "$status" -eq 0 ]  # on a GPU machine every GPU test must pass
