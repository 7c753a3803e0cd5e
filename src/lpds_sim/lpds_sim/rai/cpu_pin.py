"""Keep an env's PhysX worker thread and the thread that steps it on one CPU.

Why: RAI 0.4.1 runs PhysX with a one-thread dispatcher and busy-waits for every substep's result
(`while (!fetchResults()) {}` in `PhysXInterface::step`). With the two threads on different CPUs, each substep pays
a cross-CPU wake-up of the worker while the caller spins; on the idle 2-core dev VM that made a substep cost about
twice the CPU time (and wall time) of running both threads on one CPU, where the woken worker simply preempts the
spinning caller. The caller is pinned only while it steps PhysX and gets its previous CPU set back afterwards, so
the rest of the process (policy, learner, rendering) is not confined.
"""
from __future__ import annotations

import os


def _current_cpu() -> int:
    """CPU the calling thread runs on (field 39 of /proc/thread-self/stat)."""
    with open("/proc/thread-self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


def resolve_cpu(spec: int | str | None) -> int | None:
    """`None` = no pinning, `"auto"` = the CPU the caller runs on now (no pinning where there is nothing to gain:
    one allowed CPU, or no Linux affinity API), an int = that CPU (must be in the process's allowed set)."""
    if spec is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        if spec == "auto":
            return None
        raise ValueError("physx_cpu needs os.sched_setaffinity (Linux); pass physx_cpu=None")
    allowed = os.sched_getaffinity(0)
    if spec == "auto":
        if len(allowed) < 2:
            return None
        cpu = _current_cpu()
        return cpu if cpu in allowed else min(allowed)
    if isinstance(spec, bool) or not isinstance(spec, int):
        raise ValueError(f"physx_cpu must be None, 'auto' or a CPU index, got {spec!r}")
    if spec not in allowed:
        raise ValueError(f"physx_cpu={spec} is not among this process's CPUs {sorted(allowed)}")
    return spec


class CpuPin:
    """`with pin:` runs the block with the calling thread on `cpu` and restores its CPU set after (no-op for None).

    Threads started inside the block (PhysX's worker, when the Simulation is created there) keep the pinned set."""

    def __init__(self, cpu: int | None):
        self.cpu = cpu
        self._mask = None if cpu is None else {cpu}
        self._saved: set[int] | None = None

    def __enter__(self) -> CpuPin:
        if self._mask is not None:
            saved = os.sched_getaffinity(0)
            if saved != self._mask:
                os.sched_setaffinity(0, self._mask)
                self._saved = saved
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            os.sched_setaffinity(0, self._saved)
            self._saved = None
