"""`lpds bench` on a two-node Ray cluster: runs land on both nodes, a run killed mid-way resumes from its
checkpoint when the same command is run again, and finished runs are not redone.

The cluster lives in a private network namespace with only loopback up (`unshare -n`): outside one, Ray registers
nodes on the machine's external interface even when told 127.0.0.1. A private PID namespace (`-p -f
--mount-proc`) as well, so `ray stop` and the namespace's end reach only this test's Ray processes.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

UNSHARE = ["unshare", "-n", "-p", "-f", "--mount-proc"]
RAY = Path(sys.executable).with_name("ray")
FAULTED = "four_goal/lpds/seed1"


def _namespaces_allowed() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not installed (util-linux, iproute2)"
    res = subprocess.run(UNSHARE + ["true"], capture_output=True, text=True, timeout=30)
    return None if res.returncode == 0 else f"unshare is not permitted here ({res.stderr.strip()[:120]})"


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_two_node_sweep_lands_on_both_nodes_and_resumes_a_killed_run(tmp_path):
    reason = _namespaces_allowed()
    if reason:
        pytest.skip(reason)
    if not RAY.exists():
        pytest.skip(f"no ray executable beside {sys.executable}")
    out, port = tmp_path / "bench", 6380  # the namespace is private: no port clash with anything outside
    ray_tmp = tempfile.mkdtemp(prefix="lpr", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    bench = [sys.executable, "-m", "lpds_sim.cli", "bench", "toy", "--algos", "base,lpds", "--seeds", "0,1",
             "--env-steps", "320", "--warmup-steps", "100", "--eval-every", "160", "--ckpt-every", "160",
             "--utd", "1", "--batch-size", "32", "--hidden", "32", "32", "--critic-hidden", "32", "32",
             "--trials", "20", "--eval-trials", "10", "--entropy-states", "2", "--entropy-samples", "32",
             "--bc-steps", "150", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
             "--address", f"127.0.0.1:{port}", "--no-progress"]
    cmd = " ".join(map(shlex.quote, bench))
    script = f"""
set -u
ip link set lo up
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
trap '{RAY} stop --force >/dev/null 2>&1' EXIT
{RAY} start --head --port={port} --num-cpus=1 --include-dashboard=false --temp-dir={ray_tmp} >/dev/null 2>&1 || exit 91
{RAY} start --address=127.0.0.1:{port} --num-cpus=1 >/dev/null 2>&1 || exit 92
LPDS_BENCH_FAULT={FAULTED} {cmd} >{tmp_path}/first.out 2>{tmp_path}/first.err
echo $? >{tmp_path}/first.rc
{cmd} >{tmp_path}/second.out 2>{tmp_path}/second.err
echo $? >{tmp_path}/second.rc
"""
    try:
        res = subprocess.run(UNSHARE + ["bash", "-c", script], capture_output=True, text=True, timeout=480,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert res.returncode == 0, f"cluster start failed (rc {res.returncode}): {res.stderr[-1500:]}"
    first_err = (tmp_path / "first.err").read_text()
    assert (tmp_path / "first.rc").read_text().strip() == "2", first_err[-2000:]
    assert f"1 of 4 runs failed ({FAULTED}" in first_err and "rerun the same command" in first_err
    assert "Traceback" not in first_err
    second_err = (tmp_path / "second.err").read_text()
    assert (tmp_path / "second.rc").read_text().strip() == "0", second_err[-2000:]
    assert "4 runs (3 finished already, 1 to run)" in (tmp_path / "second.out").read_text()

    runs = out / "runs"
    sessions = {p.parent.relative_to(runs).as_posix(): _lines(p) for p in runs.glob("*/*/*/workers.jsonl")}
    assert len(sessions) == 4
    nodes = {s["node_id"] for ss in sessions.values() for s in ss}
    assert len(nodes) == 2 and None not in nodes, sessions  # the runs landed on both nodes
    for name, ss in sessions.items():  # finished runs were not redone; the killed one ran twice
        assert len(ss) == (2 if name == FAULTED else 1), (name, ss)

    killed = runs / FAULTED
    m = json.loads((killed / "metrics.json").read_text())
    assert m["resumed_from"] == 160 and m["env_steps"] == 320
    prov = json.loads((killed / "provenance.json").read_text())["sessions"]
    assert [s["resume"] for s in prov] == [True, True] and len(prov) == 2
    steps = [r["step"] for r in _lines(killed / "scalars.jsonl") if r["group"] == "eval"]
    assert steps == [0, 160, 320]  # one clean curve: the eval at 160 was kept, nothing logged twice
    table = (out / "table.csv").read_text()
    assert "four_goal,lpds,2," in table and "four_goal,base,2," in table
    for fig in ("curves.png", "floor.png"):
        assert (out / fig).stat().st_size > 1000
