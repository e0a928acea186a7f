"""Benchmarks: each module is a script (`python -m benchmarks.<name> --help`) that starts what
it needs on loopback, prints a table and can emit JSON (`--json PATH`). See README.md."""

from pathlib import Path

# The repository root: benchmark child processes run here, and Ray workers get it on their
# PYTHONPATH (they import `benchmarks.*` deployments, which are not an installed package).
REPO = Path(__file__).resolve().parents[1]
