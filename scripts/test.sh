#!/usr/bin/env bash
# The project's checks: lint, the test suite, and retrieval quality floors on the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check qa tests eval bench
ruff format --check qa tests eval bench
mypy
python -m pytest -q -p no:cacheprovider "$@"
# Quality floors on the seeds gold set: a change that harms retrieval fails here.
qa eval --gold eval/gold.jsonl --sources sources --out "${TMPDIR:-/tmp}/qa-eval-ci" \
  $(grep -v '^#' eval/floors.txt | sed 's/^/--min /')
