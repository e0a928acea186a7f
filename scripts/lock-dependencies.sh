#!/usr/bin/env bash
# Refresh constraints.txt, the lock: exact versions of every runtime and dev dependency (and of
# everything they pull in) for CPython 3.11 on linux x86_64 -- the interpreter and platform of
# rayproject/ray:2.60.0-py311, the image the Dockerfile builds on.
#
# Run it after changing `dependencies`, `local` or `dev` in pyproject.toml. It keeps every pin already in
# constraints.txt that still fits (uv treats the existing output file as preferences) and only
# adds or moves what the change requires, so the diff stays reviewable.
#   scripts/lock-dependencies.sh                          # after editing pyproject.toml
#   scripts/lock-dependencies.sh --upgrade-package httpx  # move one package to its newest version
#   scripts/lock-dependencies.sh --upgrade                # move everything (then run the tests)
# Needs `uv` (pip install uv). Every install then uses the lock:
#   pip install -c constraints.txt -e ".[dev]"
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml --extra local --extra dev \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --custom-compile-command "scripts/lock-dependencies.sh" \
  --output-file constraints.txt "$@"
