"""Benchmarks of GateLab's trainer, gates, storage and API; `python -m benchmarks.run` writes the report."""
