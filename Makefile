# The two commands of the README. Both create .venv (scripts/install.sh) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: install demo test gpu-check

install:
	@bash scripts/install.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest -q tests

# On a GPU machine: the CUDA tests and benchmarks, one report (tools/gpu_check.py, README).
gpu-check: install
	$(PY) tools/gpu_check.py
