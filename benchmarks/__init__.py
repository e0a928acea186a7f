"""Benchmarks: each module is a script (`python -m benchmarks.<name> --help`) that starts what
it needs on loopback, prints a table and can emit JSON (`--json PATH`). See README.md."""
