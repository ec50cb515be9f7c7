"""Task streams shipped by the core (registered through the same hooks as plugins); the
top-level ``benchmarks/`` folder holds speed scripts, not streams."""
