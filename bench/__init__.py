"""Benchmarks of our ``ten serve`` against the reference tenement 0.2.2 (``make bench``)."""
