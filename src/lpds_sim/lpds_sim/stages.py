"""Resumable multi-stage jobs: each stage knows how to check its own outputs, so a rerun skips finished work.

A stage is valid when its outputs exist *and* pass a cheap check (a demo file that loads with the right number of
demos, a run folder with done.json, an export whose parity record passed). A stage that was interrupted leaves
either nothing valid (it runs again) or a resumable run folder (its `run` resumes it).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from lpds_core.errors import UserError


@dataclasses.dataclass
class Stage:
    name: str
    valid: Callable[[], bool]  # outputs exist and are usable
    run: Callable[[], None]  # produce (or resume producing) the outputs


class StageError(UserError):
    """A stage finished but its outputs did not pass their own validity check."""


def run_stages(stages: list[Stage], log: Callable[[str], None] = print, force: tuple[str, ...] = ()) -> list[str]:
    """Run the stages in order, skipping those whose outputs are valid; returns the names that ran."""
    ran: list[str] = []
    for i, st in enumerate(stages, 1):
        tag = f"[{i}/{len(stages)} {st.name}]"
        if st.name not in force and _safe_valid(st):
            log(f"{tag} skipped: outputs exist and are valid")
            continue
        log(f"{tag} running")
        t0 = time.perf_counter()
        st.run()
        if not _safe_valid(st):
            raise StageError(f"stage '{st.name}' finished but its outputs are not valid; see the messages above")
        log(f"{tag} done in {time.perf_counter() - t0:.0f} s")
        ran.append(st.name)
    return ran


def _safe_valid(st: Stage) -> bool:
    try:
        return bool(st.valid())
    except Exception:  # noqa: BLE001 - an unreadable output is simply not valid: the stage redoes it
        return False
