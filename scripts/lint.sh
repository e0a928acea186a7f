#!/usr/bin/env bash
# The static checks CI runs before the tests (.ci/run): formatting, lint, and types of every
# package but tests/ (`files` in [tool.mypy] of pyproject.toml).
#   scripts/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ruff format --check .
ruff check .
python -m mypy
