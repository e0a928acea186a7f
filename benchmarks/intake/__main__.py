"""``python -m benchmarks.intake``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.intake.bench import main

sys.argv[0] = "python -m benchmarks.intake"  # what --help prints as the command
main()
