"""``python -m benchmarks.retrieval``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.retrieval.bench import main

sys.argv[0] = "python -m benchmarks.retrieval"  # what --help prints as the command
main()
