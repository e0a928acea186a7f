"""``python -m benchmarks.footprint``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.footprint.bench import main

sys.argv[0] = "python -m benchmarks.footprint"  # what --help prints as the command
main()
