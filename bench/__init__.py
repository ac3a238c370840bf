"""Benchmark of proxyhunt against grep, a Python loop and the Zircolite approach: see ``python -m bench --help``."""
