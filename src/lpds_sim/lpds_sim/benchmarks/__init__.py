"""Standard benchmarks made here: Gym locomotion tasks, SAC experts trained with our SAC, and "medium" datasets
in Minari's format (D4RL's recipe), so the benchmark runs offline and reads community datasets when present."""
