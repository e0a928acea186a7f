"""``python -m benchmarks.pipeline``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.pipeline.bench import main

sys.argv[0] = "python -m benchmarks.pipeline"  # what --help prints as the command
main()
