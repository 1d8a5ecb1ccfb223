#!/usr/bin/env bash
# One command from a fresh clone to a working chulcheo:
#   creates .venv, installs pinned dependencies, provisions the offline models,
#   indexes the bundled Korean sample documents and answers a sample search.
# Options: --install-only (skip the sample ingest and search; used by .ci/run).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "chulcheo needs Python >= 3.11"'

if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "==> creating .venv"
  rm -rf .venv  # a half-made venv (e.g. no ensurepip) would fail later in a confusing way
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

# The sample gets its own index so a re-run never mixes it into a real one; it is rebuilt
# each run (seconds), so changed chunk or model settings never block the demo.
SAMPLE_INDEX=var/sample-index
echo "==> indexing the sample documents in sample_corpus/ into $SAMPLE_INDEX"
.venv/bin/chulcheo ingest sample_corpus --index "$SAMPLE_INDEX" --rebuild
echo "==> sample search: 연차휴가는 며칠인가요?"
.venv/bin/chulcheo search "연차휴가는 며칠인가요?" --k 3 --index "$SAMPLE_INDEX"
echo
echo "Done. Try: .venv/bin/chulcheo search \"USB 메모리를 써도 되나요?\" --index $SAMPLE_INDEX"
