"""``python -m benchmarks.haproxy_multinode``: the benchmark is in ``bench.py``."""

import sys

from benchmarks.haproxy_multinode.bench import main

sys.argv[0] = "python -m benchmarks.haproxy_multinode"  # what --help prints as the command
main()
