"""``python -m benchmarks.recovery``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.recovery.bench import main

sys.argv[0] = "python -m benchmarks.recovery"  # what --help prints as the command
main()
