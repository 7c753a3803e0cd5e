"""Stale-input watchdog: the policy may only command while every input it depends on is recent."""
from __future__ import annotations


class StaleWatchdog:
    def __init__(self, max_age: float, names: tuple[str, ...] = ("observation", "robot_state")):
        if not max_age > 0:
            raise ValueError(f"max_age must be a positive number of seconds, got {max_age}")
        self.max_age = float(max_age)
        self._stamps: dict[str, float | None] = {n: None for n in names}

    def feed(self, name: str, stamp: float) -> None:
        if name not in self._stamps:
            raise KeyError(f"unknown watchdog input {name!r}; known: {sorted(self._stamps)}")
        self._stamps[name] = float(stamp)

    @property
    def stamps(self) -> dict[str, float | None]:
        return dict(self._stamps)

    def stale(self, now: float) -> list[str]:
        """Reasons why the inputs are not usable now; empty when all are fresh."""
        out = []
        for name, stamp in self._stamps.items():
            if stamp is None:
                out.append(f"no {name} received yet")
            elif now - stamp > self.max_age:
                out.append(f"{name} is {now - stamp:.3f} s old (limit {self.max_age} s)")
            elif stamp - now > self.max_age:
                out.append(f"{name} stamp is {stamp - now:.3f} s in the future")
        return out

    def ok(self, now: float) -> bool:
        return not self.stale(now)
