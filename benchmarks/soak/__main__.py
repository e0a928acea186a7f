"""``python -m benchmarks.soak``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.soak.bench import main

sys.argv[0] = "python -m benchmarks.soak"  # what --help prints as the command
main()
