"""Benchmarks shipped by the core (registered through the same hooks as plugins)."""
