#!/usr/bin/env bash
# The whole test suite: set up (idempotent), then every tier. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n 2 --durations=15 tests "$@"
