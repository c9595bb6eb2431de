"""Benchmarks: `python -m bench` runs them all, `python -m bench.NAME` runs one.

Each module is a script with a `main()` that prints figures with `bench._util.report`;
benchmarks never assert on speed.
"""
