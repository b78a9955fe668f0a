# Each target creates the virtual environment on first use, so a fresh clone needs nothing else.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint dagster bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/roster-pipeline demo

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

dagster: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml

bench: $(STAMP)
	$(PY) bench/paging.py

clean:
	rm -rf $(VENV) data/lake data/roster.duckdb data/dagster_home
