"""Benchmarks: suites (toy, gym, ...), one run per (task, algo, seed) in its own run folder, sweeps on Ray
(`lpds bench`), and the aggregation of a sweep's folders into figures and tables."""
