"""``python -m benchmarks.llm_share``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.llm_share.bench import main

sys.argv[0] = "python -m benchmarks.llm_share"  # what --help prints as the command
main()
