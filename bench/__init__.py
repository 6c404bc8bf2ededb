"""Benchmarks of the dispatch path: python -m bench (see bench/README.md)."""
