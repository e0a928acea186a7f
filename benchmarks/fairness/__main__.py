"""``python -m benchmarks.fairness``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.fairness.bench import main

sys.argv[0] = "python -m benchmarks.fairness"  # what --help prints as the command
main()
