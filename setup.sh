#!/usr/bin/env bash
# One command from a fresh clone to a working chulcheo:
#   creates .venv, installs pinned dependencies, provisions the offline models,
#   indexes the bundled Korean sample documents and answers a sample search.
# Options: --install-only (skip the sample ingest and search; used by .ci/run).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "chulcheo needs Python >= 3.11"'

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
VPY=.venv/bin/python
echo "==> installing dependencies (pinned in constraints.txt)"
"$VPY" -m pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch would pull several GB of CUDA wheels.
"$VPY" -m pip install --quiet "torch==2.13.0"
"$VPY" -m pip install --quiet -c constraints.txt -e ".[test]"

echo "==> provisioning models (cached in \${CHULCHEO_MODEL_DIR:-~/.cache/chulcheo/models})"
.venv/bin/chulcheo models pull embeddinggemma-300m

if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

echo "==> indexing the sample documents in sample_corpus/"
.venv/bin/chulcheo ingest sample_corpus
echo "==> sample search: 연차휴가는 며칠인가요?"
.venv/bin/chulcheo search "연차휴가는 며칠인가요?" --k 3
