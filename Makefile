# The two set-up commands of the README: `make main` and `make test`. Each installs what it needs.
PY ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
INSTALL_STAMP = $(VENV)/.installed
# In CI a toolchain that fails to set up fails the run; elsewhere its tests skip and say why.
STRICT ?= 0

$(INSTALL_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# One pip command for the whole toolchain (DESIGN.md: installing litert-torch later breaks typing-extensions).
	$(PIP) install -q torch==2.13.0 -e '.[all,dev]'
	touch $@

install: $(INSTALL_STAMP)

# The main job: bundled fp32 + QAT weights -> every artifact (fp32 and int8) -> parity -> one report
# (runs/pipeline). With the labelled Moxa3K beside the repo parity reports mAP on its 200 test images; without
# it, parity runs on real photos that scikit-image ships.
DATA ?= $(wildcard ../shared/data/moxa3k)
PIPELINE_ARGS ?= $(if $(DATA),--data $(DATA) --dataset moxa3k,)
main: install
	$(VENV)/bin/slfm pipeline --out runs/pipeline $(PIPELINE_ARGS)

# Toolchains for the device and demo-app suites: emulated Raspberry Pi (root), kotlinc, Swift (root), the browser
# demo's LiteRT.js (npm ci) + chromium and chromium-driver (root).
toolchains:
	@for s in device_tests/pi_root/setup.sh android_demo/setup_kotlin.sh ios_demo/setup_swift.sh web_demo/setup.sh; do \
	  echo "== $$s"; \
	  if ! SLFM_PIP=$(CURDIR)/$(PIP) bash $$s; then \
	    if [ "$(STRICT)" = 1 ]; then echo "$$s failed" >&2; exit 1; fi; \
	    echo "warning: $$s failed; the tests that need it will skip" >&2; \
	  fi; \
	done

test: install toolchains
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -m "not slow"

.PHONY: install main toolchains test
