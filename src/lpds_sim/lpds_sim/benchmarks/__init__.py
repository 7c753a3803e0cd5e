<<<<<<< .merge_file_zSH6Oa
"""Benchmarks: suites (toy, gym, ...), one run per (task, algo, seed) in its own run folder, sweeps on Ray
(`lpds bench`), and the aggregation of a sweep's folders into figures and tables."""
=======
"""Standard benchmarks made here: Gym locomotion tasks, SAC experts trained with our SAC, and "medium" datasets
in Minari's format (D4RL's recipe), so the benchmark runs offline and reads community datasets when present."""
>>>>>>> .merge_file_LiQsLn
