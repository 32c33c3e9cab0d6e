# The two commands of the README. Both create .venv (scripts/install.sh) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: install demo test

install:
	@bash scripts/install.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest -q tests
