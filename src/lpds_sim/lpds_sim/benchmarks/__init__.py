"""Standard benchmarks made here and run on Ray: suites (toy, gym, ...), one run per (task, algo, seed) in its own
run folder (`lpds bench`), the aggregation of a sweep's folders into figures and tables; for Gym locomotion, SAC
experts trained with our SAC, "medium" datasets in Minari's format (D4RL's recipe) and the frozen bases trained
on them, so the benchmark runs offline and reads community datasets when present."""
