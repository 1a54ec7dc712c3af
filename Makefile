# Two commands: `make demo` (offline, from nothing to predictions) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := configs/demo.yaml

.PHONY: demo demo-multilabel demo-untrimmed test test-all test-min mutate clean-demo

# The venv is (re)installed when requirements.txt changes; a second run reuses it.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) prepare_data.py --config $(DEMO)
	$(PY) train.py --config $(DEMO)
	$(PY) eval.py --config $(DEMO) --clips 1 --crops 1
	$(PY) infer.py --config $(DEMO) $$(for d in data/demo/test/*/; do ls "$$d"*.avi | head -n 1; done)

# Several labels per video (configs/multilabel.yaml): a pan and a square's own motion, 0-2 labels each
demo-multilabel: $(VENV)/.installed
	$(PY) prepare_data.py --config configs/multilabel.yaml
	$(PY) train.py --config configs/multilabel.yaml
	$(PY) infer.py --config configs/multilabel.yaml $$(for d in data/multilabel/test/*/; do ls "$$d"*.avi | head -n 1; done | head -n 6)

# Untrimmed recordings (configs/untrimmed.yaml): synthetic recordings of 1-2 minutes annotated with time ranges,
# trained on in place (segments, and a Background class from the stretches between them), then evaluated
demo-untrimmed: $(VENV)/.installed
	$(PY) prepare_data.py --config configs/untrimmed.yaml --make-recordings data/untrimmed-recordings
	$(PY) train.py --config configs/untrimmed.yaml
	$(PY) eval.py --config configs/untrimmed.yaml --clips 1 --crops 1

# The layers (lint-imports: pyproject.toml's [tool.importlinter]) and ruff first, then the tests but the
# slow ones (-m slow: over a minute each; `make test-all` and CI's second pass run them).
# PYTEST_ARGS: e.g. "-m torchcodec" (what CI reruns where FFmpeg's libraries load; a -m there replaces "not slow")
test: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests -m "not slow" $(PYTEST_ARGS)

test-all: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

# The suite on the oldest version of each requirement (requirements-min.txt), in a venv of its own:
# what requirements.txt's lower bounds are checked with (downloads torch 2.7: about 3 GB).
VENV_MIN ?= .venv-min
$(VENV_MIN)/.installed: requirements.txt requirements-min.txt
	test -x $(VENV_MIN)/bin/python || python3 -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet -r requirements.txt -c requirements-min.txt
	touch $@

test-min: $(VENV_MIN)/.installed
	$(VENV_MIN)/bin/python -m pytest -q tests $(PYTEST_ARGS)

# Mutation testing (docs/testing.md): mutmut changes the pure, central functions (tools/mutation_report.py's
# TARGETS) one small change at a time and runs the fast tests that reach each change ([tool.mutmut] in
# pyproject.toml); a change no test notices "survives". Two test processes on 2 cores, one thread each;
# a fresh mutants/ every run. Report: runs/mutation/report.json, printed as a table.
$(VENV)/.mutmut: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

mutate: $(VENV)/.mutmut
	rm -rf mutants
	mkdir -p runs/mutation
	date +%s > runs/mutation/started
	set -f; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2 $$($(PY) tools/mutation_report.py --globs) \
		> runs/mutation/mutmut.log 2>&1 || (tail -n 40 runs/mutation/mutmut.log; exit 1)
	$(PY) tools/mutation_report.py --write runs/mutation/report.json

clean-demo:
	rm -rf data/demo checkpoints/videomae-tiny runs/demo data/multilabel runs/multilabel data/untrimmed \
		data/untrimmed-recordings runs/untrimmed
