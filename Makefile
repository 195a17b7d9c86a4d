# The two set-up commands of the README. Each installs what it needs into .venv and runs.
PY ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
INSTALL_STAMP = $(VENV)/.installed

$(INSTALL_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# One pip command for the whole toolchain (DESIGN.md: installing litert-torch later breaks typing-extensions).
	$(PIP) install -q torch==2.13.0 -e '.[all,dev]'
	touch $@

install: $(INSTALL_STAMP)

# The main job.
main: install
	$(VENV)/bin/slfm info

# Installs everything the tests need (toolchains for the device and demo-app suites) and runs them.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

.PHONY: install main test
