# Two commands for a fresh machine: `make demo` and `make test`. Each creates .venv if needed and installs into it.
PYTHON ?= python3
VENV ?= .venv
OLAH_VENV ?= .venv-olah
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: install install-test ffmpeg browser demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[test]"
	touch $@

# A separate venv for olah, the local Hub-compatible server the Hub tests download from (see tests/zoo/hub_server.py).
$(OLAH_VENV)/.installed:
	$(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/python -m pip install -q --disable-pip-version-check "olah==0.5.4"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test $(OLAH_VENV)/.installed

demo: install
	$(VENV)/bin/nlzoo demo

# The video corpus tests write Theora with the ffmpeg program, and torchcodec loads FFmpeg's shared libraries.
ffmpeg:
	@command -v ffmpeg >/dev/null || (apt-get update -qq && apt-get install -y -qq ffmpeg)

# The web page's end-to-end tests drive headless Chromium: Debian's chromium and chromium-driver, installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

test: install-test ffmpeg browser
	NLZOO_OLAH_CLI=$(abspath $(OLAH_VENV))/bin/olah-cli NLZOO_REQUIRE_OLAH=1 $(PY) -m pytest -q tests

lint: install-test
	$(VENV)/bin/ruff check nlzoo tests benchmarks
	$(VENV)/bin/ruff format --check nlzoo tests benchmarks

# Speed and memory: each script prints ratios against a reference measured in the same run (minutes on a CPU).
bench: install
	$(PY) benchmarks/nonlocal_block.py
	$(PY) benchmarks/models.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/image.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/serve.py

clean:
	rm -rf $(VENV) $(OLAH_VENV) .pytest_cache
