#!/usr/bin/env bash
# One command from a fresh clone to a working chulcheo:
#   creates .venv, installs pinned dependencies, provisions the offline models,
#   indexes the bundled Korean sample documents, runs a sample search, answers a sample question,
#   and then serves the web UI and the API over the sample documents (Ctrl-C stops it).
# Options: --install-only (skip everything after installing; used by .ci/run);
#          --no-serve (stop after the sample question instead of serving).
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

# llama-cpp-python ships as source only. Build a CPU wheel once and cache it outside the
# repository: AVX-512 + VNNI kernels where the CPU has them (prompt reading 1.45x faster than
# AVX2 on these machines, docs/benchmarks.md), else AVX2/FMA/F16C. Never -march=native: that
# also compiles AMX kernels, which crash on VMs that advertise AMX but do not let guests use it.
LLAMA_VERSION=0.3.36
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
LLAMA_VARIANT=avx2
has_cpu_flags() {  # has_cpu_flags avx512f avx512bw ... -> true if the first CPU has them all
  local flags
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || return 1
  for f in "$@"; do grep -qw "$f" <<<"$flags" || return 1; done
}
if has_cpu_flags avx512f avx512bw avx512vl avx512_vnni avx512vbmi avx512_bf16 avx_vnni; then
  LLAMA_VARIANT=avx512
  LLAMA_FLAGS="$LLAMA_FLAGS -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
else
  LLAMA_FLAGS="$LLAMA_FLAGS -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF"
fi
WHEEL_DIR=${CHULCHEO_WHEEL_DIR:-$HOME/.cache/chulcheo/wheels}
[ "$LLAMA_VARIANT" = avx2 ] || WHEEL_DIR="$WHEEL_DIR/$LLAMA_VARIANT"
LLAMA_WHEEL=$(ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$LLAMA_WHEEL" ]; then
  echo "==> building llama-cpp-python $LLAMA_VERSION ($LLAMA_VARIANT CPU build, about 10-15 minutes, once)"
  mkdir -p "$WHEEL_DIR"
  CMAKE_ARGS="$LLAMA_FLAGS" "$VPY" -m pip wheel --quiet --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEEL_DIR"
  LLAMA_WHEEL=$(ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
fi
INSTALLED=$("$VPY" -c 'import importlib.metadata as m, llama_cpp as l
print(m.version("llama_cpp_python"), "avx512" if b"AVX512 = 1" in l.llama_print_system_info() else "avx2")' 2>/dev/null || true)
if [ "$INSTALLED" != "$LLAMA_VERSION $LLAMA_VARIANT" ]; then
  "$VPY" -m pip install --quiet --no-deps --force-reinstall "$LLAMA_WHEEL"
fi
"$VPY" -m pip install --quiet -c constraints.txt -e ".[test]"

# OCR of scanned PDFs and images: Tesseract with its Korean model (Debian packages). Installed
# where apt works as root; otherwise say exactly what to install (chulcheo runs without it and
# reports such files as needing OCR).
if ! { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx kor; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Tesseract OCR with its Korean model (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-kor) \
      >/dev/null 2>&1 || echo "note: could not install tesseract-ocr tesseract-ocr-kor; scanned PDFs and images will need it"
  else
    echo "note: OCR of scanned PDFs and images needs: sudo apt-get install tesseract-ocr tesseract-ocr-kor"
  fi
fi

echo "==> provisioning models (cached in \${CHULCHEO_MODEL_DIR:-~/.cache/chulcheo/models})"
.venv/bin/chulcheo models pull embeddinggemma-300m qwen2.5-coder-1.5b-instruct qwen2.5-coder-0.5b-instruct

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
echo "==> sample question (local LLM, every sentence checked against its source): 연차휴가는 며칠인가요?"
.venv/bin/chulcheo ask "연차휴가는 며칠인가요?" --index "$SAMPLE_INDEX"
if [ "${1:-}" = "--no-serve" ]; then
  echo
  echo "Done. Try: .venv/bin/chulcheo ask \"USB 메모리를 써도 되나요?\" --index $SAMPLE_INDEX"
  exit 0
fi
# The demo: one user, no API keys (--open); its uploads and feedback stay under var/ too.
echo "==> serving the sample documents: open http://127.0.0.1:${CHULCHEO_PORT:-8000}/ (API: /v1, OpenAPI: /docs; Ctrl-C stops)"
export CHULCHEO_STATE_DIR=${CHULCHEO_STATE_DIR:-var/sample-state}
exec .venv/bin/chulcheo serve --open --index "$SAMPLE_INDEX" --port "${CHULCHEO_PORT:-8000}"
