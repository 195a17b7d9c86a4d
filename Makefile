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
# demo's LiteRT.js (npm ci) + chromium and chromium-driver (root), adb (root), the local tflite-runtime 2.14 venv.
# Each script's output goes to runs/toolchains/<script>.log; the console gets one line per script (and the log's
# end when one fails).
TOOLCHAINS = device_tests/pi_root/setup.sh android_demo/setup_kotlin.sh ios_demo/setup_swift.sh web_demo/setup.sh \
	device_tests/setup_adb.sh device_tests/setup_tflrt.sh
toolchains:
	@mkdir -p runs/toolchains
	@for s in $(TOOLCHAINS); do \
	  log=runs/toolchains/$$(basename $$(dirname $$s))_$$(basename $$s .sh).log; t0=$$(date +%s); \
	  if SLFM_PIP=$(CURDIR)/$(PIP) bash $$s > $$log 2>&1; then \
	    echo "toolchain $$s: ok ($$(( $$(date +%s) - t0 )) s, log $$log)"; \
	  else \
	    tail -n 20 $$log >&2; \
	    if [ "$(STRICT)" = 1 ]; then echo "toolchain $$s failed (log $$log)" >&2; exit 1; fi; \
	    echo "warning: toolchain $$s failed (log $$log); the tests that need it will skip" >&2; \
	  fi; \
	done

# Stop the emulated Pi's sshd that `make toolchains` started (make test does it after pytest).
pi-stop:
	@pid=$${SLFM_PI_ROOT:-/var/cache/slfm-pi-root}/rootfs/run/sshd.pid; \
	if [ -f $$pid ] && kill -0 $$(cat $$pid) 2>/dev/null; then kill $$(cat $$pid) && echo "emulated Pi sshd stopped"; fi

# The whole suite (what CI runs, about 45 min on 2 cores); the 15 slowest tests are listed at the end.
test: install toolchains
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q --durations=15; rc=$$?; $(MAKE) --no-print-directory pi-stop; exit $$rc

# The quick subset for edit-test loops (about 2 min): every test not marked slow (training, conversion, the
# toolchain suites); no toolchain set-up.
test-fast: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -m "not slow"

.PHONY: install main toolchains pi-stop test test-fast
