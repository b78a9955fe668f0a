# Each target creates the virtual environment on first use, so a fresh clone needs nothing else.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test chromium lint dagster bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/roster-pipeline demo

test: $(STAMP) chromium
	$(VENV)/bin/pytest

# The UI test screenshots the asset graph with Debian's chromium; CI (root, Debian) installs it here.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
		else \
			echo "chromium missing and not root: the UI test will fail; run 'sudo apt-get install -y chromium'"; \
		fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# dagster dev against the same instance `roster-pipeline sync` uses (data/dagster_home, with our dagster.yaml).
dagster: $(STAMP)
	mkdir -p data/dagster_home
	test -f data/dagster_home/dagster.yaml || cp dagster.yaml data/dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/data/dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

bench: $(STAMP)
	$(PY) bench/paging.py
	$(PY) bench/sync.py

clean:
	rm -rf $(VENV) data/lake data/roster.duckdb data/dagster_home
