"""Benchmarks: a folder per benchmark (`python -m benchmarks.<name> --help`) over one rig
(`benchmarks/rig/`); each starts what it needs on loopback, prints a table and can emit JSON
(`--json PATH`). See benchmarks/README.md."""

from pathlib import Path

# The repository root: benchmark child processes run here, and Ray workers get it on their
# PYTHONPATH (they import `benchmarks.*` deployments, which are not an installed package).
REPO = Path(__file__).resolve().parents[1]
