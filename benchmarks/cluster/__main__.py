"""``python -m benchmarks.cluster``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.cluster.bench import main

sys.argv[0] = "python -m benchmarks.cluster"  # what --help prints as the command
main()
