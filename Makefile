# The two commands: `make run` (back office with demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test soak install install-dev bench bench-io bench-automations lint screenshots

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) -m config.run

# DEBUG defaults to on for tests, as for `make run`: no production SECRET_KEY needed, plain http.
test: install-dev
	DEBUG=$${DEBUG:-true} $(PY) -m pytest $(PYTEST_ARGS)

# The long tests: a bounded load of event ingest and back-office pages (SOAK_SECONDS, default 120).
soak: install-dev
	DEBUG=$${DEBUG:-true} $(PY) -m pytest tests/soak -m soak -s $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install-dev
	$(PY) -m bench.engine $(BENCH_ARGS)

bench-io: install-dev
	$(PY) -m bench.io $(BENCH_ARGS)

bench-automations: install-dev
	$(PY) -m bench.automations $(BENCH_ARGS)

# The README's pictures of the back office, from seeded demo data, in Debian's Chromium.
screenshots: install-dev
	DEBUG=$${DEBUG:-true} $(PY) -m pytest tests/e2e/screenshots.py -q -p no:cacheprovider
