"""Learning-curve axes stay readable at the budgets we run (100k-1M env steps)."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")


def test_env_steps_ticks_are_short(tmp_path):
    import matplotlib.pyplot as plt

    from lpds_sim.curves import env_steps_axis

    fig, ax = plt.subplots()
    ax.plot([0, 100_000, 200_000, 1_500_000], [0, 1, 2, 3])
    env_steps_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert ax.get_xlabel() == "env steps"
    assert any(lab.endswith("k") for lab in labels) and any(lab.endswith("M") for lab in labels), labels
    assert max(len(lab) for lab in labels) <= 5, labels  # "200000" beside "1500000" is what overlapped


def test_steer_curves_written_from_scalars(tmp_path):
    from lpds_sim.curves import plot_steer_curves

    run = tmp_path / "steer"
    run.mkdir()
    rows = [{"group": "eval", "step": s, "success": s / 4e5, "return": -5 + s / 1e5, "success_lo": 0.0,
             "success_hi": 0.9, "trials": 40} for s in (0, 100_000, 200_000)]
    rows += [{"group": "train", "step": s, "lambda": 0.1, "delta_sq": 1.0, "delta": 8.0} for s in (10, 20)]
    (run / "scalars.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths = plot_steer_curves(run)
    assert [p.name for p in paths] == ["success_return.png", "lambda_delta.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
