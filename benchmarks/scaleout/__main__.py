"""``python -m benchmarks.scaleout``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.scaleout.bench import main

sys.argv[0] = "python -m benchmarks.scaleout"  # what --help prints as the command
main()
