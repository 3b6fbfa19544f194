# The two commands of the README: `make run` (set up, then run the pipeline on the bundled
# snapshot) and `make test` (set up, then run the tests). Both install what they need into .venv
# (and `make test` Debian's chromium and postgresql, for the dashboard's browser test and the
# PostgreSQL-backed Prefect server's test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench setup clean browser postgres prometheus lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/gridiron run

# the dashboard test drives Debian's chromium; installed here when missing and we may (root)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "note: no chromium: the dashboard's browser test will be skipped (apt-get install chromium)"; }

# the PostgreSQL-backed Prefect server test starts Debian's PostgreSQL server programs in a tmp dir
postgres:
	@{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  postgresql >/dev/null) || echo "note: no PostgreSQL: its Prefect server test will be skipped (apt-get install postgresql)"; }

# the observability tests start Debian's Prometheus, promtool and Pushgateway on loopback
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v prometheus-pushgateway >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  prometheus prometheus-pushgateway >/dev/null) || echo "note: no Prometheus: its tests will be skipped (apt-get install prometheus prometheus-pushgateway)"; }

# three workers, each taking whole test files (their module fixtures and servers stay together):
# the suite waits on servers, workers and subprocesses part of the time, so on 2 cores a third
# worker fills those waits (fresh clones, the same 408 tests: 685 s with two, 608 s with three),
# and the longest files are collected first (tests/conftest.py) so no worker ends on one alone
test: $(STAMP) browser postgres prometheus
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 3 --dist loadfile

# lint and import order ([tool.ruff] in pyproject.toml); `make test` runs it first
lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/run_pipeline.py

clean:
	rm -rf $(VENV) data
