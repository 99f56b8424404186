#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment with the CPU build of torch, the package,
# the converted model, and (for the browser tests) Debian's Chromium. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# torch first and pinned: any other torch requirement pulls several GB of CUDA packages.
pip install --quiet --disable-pip-version-check torch==2.13.0
pip install --quiet --disable-pip-version-check -e ".[dev,onnx,train,ray]" torch==2.13.0

# Debian packages the tests use (never `playwright install`): Chromium for the widget's
# browser tests; LibreOffice (writer, no GUI) to make real .docx/.odt/.pdf test documents;
# poppler's pdftotext as an independent check of PDF page text.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
command -v soffice >/dev/null || need+=(libreoffice-writer-nogui)
command -v pdftotext >/dev/null || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ] && [ "${QA_SKIP_APT:-${QA_SKIP_CHROMIUM:-0}}" != 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "note: missing ${need[*]}; the tests that need them will be skipped (apt-get install ${need[*]})" >&2
  fi
fi

# Convert the bundled multilingual-e5-small weights once (cached in ~/.cache/qa).
qa model
python -m qa.eval.warm  # compile ranx's numba metrics once: the first qa eval skips ~1 min
