#!/usr/bin/env bash
# The local tflite-runtime 2.14 venv (numpy<2: a Raspberry Pi's runtime, driven as a subprocess), made before the
# tests: the parity harness makes it on first use, so without this step the tests that only look for it
# (test_convert_artifacts, test_eval_artifacts, test_latency) skip when they run before a parity test.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(dirname "${SLFM_PIP:-.venv/bin/pip}")/python"
"$py" -m slfm.device_tests.tflrt_env
