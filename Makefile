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

# demo and dagster share one Dagster instance, so the UI shows the demo's runs.
DAGSTER_HOME_DIR := $(CURDIR)/data/dagster_home

demo: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/roster-pipeline demo

# One pytest worker per core (pytest-xdist): most tests wait on servers, subprocesses and Dagster's storage.
test: $(STAMP) chromium
	$(VENV)/bin/pytest -n auto

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

# dagster dev -w workspace.yaml against data/dagster_home (created with our dagster.yaml), with the demo districts
# served by the sandbox and their credentials in its environment, so the schedules' first runs succeed.
dagster: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/roster-pipeline dev

bench: $(STAMP)
	$(PY) bench/paging.py
	$(PY) bench/sync.py
	$(PY) bench/run_concurrency.py
	$(PY) bench/large_district.py
	$(PY) bench/lake_storage.py
	$(PY) bench/catalog_commits.py
	$(PY) bench/fleet.py --districts 40 --students 1000 --large 0

clean:
	rm -rf $(VENV) data/lake data/roster data/roster.duckdb data/work data/inbox data/dagster_home
