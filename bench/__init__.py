"""Bookwell's benchmarks: ``python -m bench`` runs them all (see ``--help``).

Benchmarks are run by hand, never by the test suite: wall-clock figures depend on the machine, so
nothing here asserts a time. What a run can fail on is correctness (a benchmark that booked a slot
twice, or measured a query that returned the wrong rows), because then its figures mean nothing.

To add a benchmark, write a module with a :class:`bench.benchmark.Benchmark` and append it to
:data:`bench.suite.BENCHMARKS`.
"""
