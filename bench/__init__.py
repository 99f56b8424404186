"""The benchmark and the load test: run from the repository root (`python -m bench.run`)."""
