"""The benchmark suite of fluidcloud_async: ``python -m benchmarks.run`` (see BENCHMARKS.md)."""
