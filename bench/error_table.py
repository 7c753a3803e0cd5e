"""Every class of bad input, through the real `lpds` CLI: the exact command and the one line it prints.

Usage: python bench/error_table.py [--work /tmp/lpds_errors]   (from the repo root, the venv's python)

Not a benchmark: it builds tiny fixtures (demo files, runs, an export; some deliberately broken) in --work and
prints a Markdown table (bad input | command | the line on stderr), flagging any case that is not exactly one
`error:` line with exit code 2 and no traceback. The same classes are asserted in test/sim/test_user_errors.py and
test/sim/test_config_cli.py; this script shows what a user sees.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "sim"))  # the tests' fixture builders


def fixtures(work: Path) -> None:
    import torch
    from lpds_core.checkpoint import save_backbone
    from lpds_core.flow_matching import FlowMatchingPolicy
    from pipeline_helpers import make_base_run, make_steer_run, write_tiny_demos

    from lpds_sim import runs
    from lpds_sim.cli import main
    from lpds_sim.pipeline import PipelineConfig
    from lpds_sim.train_base import BaseConfig, backbone_path

    os.chdir(work)
    base = make_base_run(Path("base"))
    make_steer_run(Path("steer"), base)
    assert main(["export", "--run", "steer", "--out", "export"]) == 0
    make_base_run(Path("base_mug"), task="mug_hang")
    wide = make_base_run(Path("base_wide"))
    pol = FlowMatchingPolicy(18, 5, 4, hidden=16, n_layers=1, num_steps=2)
    pol.fit_normalizers(torch.randn(16, 18), torch.rand(16, 4, 5) * 2 - 1)
    save_backbone(pol, backbone_path(wide), extra={"task": "pick_place", "obs": "state"})

    def cut(p: str | Path) -> None:
        data = Path(p).read_bytes()
        Path(p).write_bytes(data[: len(data) // 2])

    Path("garbage.hdf5").write_bytes(b"not hdf5" * 20)
    cut(write_tiny_demos(Path("cut.hdf5")))
    write_tiny_demos(Path("nan.hdf5"), n=3, bad=(1, "actions"))
    write_tiny_demos(Path("inf_state.hdf5"), n=3, bad=(2, "state"))
    write_tiny_demos(Path("joints.hdf5"), obs_key="joints")
    write_tiny_demos(Path("act3.hdf5"), act_dim=3)
    write_tiny_demos(Path("good.hdf5"))
    shutil.copytree("base", "base_cut")
    cut("base_cut/backbone.safetensors")
    shutil.copytree("steer", "steer_cut")
    cut("steer_cut/agent.pt")
    shutil.copytree("export", "export_cut")
    cut("export_cut/decoder.onnx")
    r = runs.RunDir.open("b_ck", runs.config_from_dict(BaseConfig, {"data": "good.hdf5", "horizon": 4}),
                         resume=False, kind="base")
    cut(r.checkpointer().save(2, {"x": list(range(100))}))
    Path("mine").mkdir()
    Path("mine/thesis.tex").write_text("x")
    Path("demos.hdf5").write_bytes(b"earlier demos")
    Path("e_old").mkdir()
    Path("e_old/grid_results.json").write_text("{}")
    Path("a_file").write_text("x")
    shutil.copytree("steer", "steer_yaml")
    Path("steer_yaml/config.yaml").write_text("task: [unclosed\n")
    Path("p").mkdir()
    runs.save_config("p/pipeline.yaml", runs.config_from_dict(PipelineConfig, {"n_demos": 2, "bc_steps": 2}))
    write_tiny_demos(Path("p/demos.hdf5"), n=2, bad=(1, "actions"))
    Path("bool.yaml").write_text('use_eps: "false"\n')
    Path("lr.yaml").write_text("lr_critic: 1e-3\nenv_steps: 0\n")
    Path("typo.yaml").write_text("detla: 3\n")
    Path("list.yaml").write_text('hidden: "64"\n')


CASES = [
    ("missing demo file", "train-base --task pick_place --data nope.hdf5 --out b"),
    ("missing base run", "train-steer --base nope --out s"),
    ("missing run to export", "export --run nope --out o"),
    ("missing policy path", "eval --policy nope --out e"),
    ("folder that is neither run nor export", "eval --policy mine --out e"),
    ("demos over an existing file", "demos --out demos.hdf5"),
    ("eval over existing results", "eval --policy random --out e_old"),
    ("export into a folder that is not an export", "export --run steer --out mine"),
    ("export into a training run", "export --run steer --out base"),
    ("pipeline into a folder that is not a pipeline run", "pipeline --out base"),
    ("missing config file", "pipeline --config nope.yaml --out p2"),
    ("toy --out is a file", "toy --out a_file"),
    ("base run of another task", "train-steer --base base_mug --task pick_place --out s"),
    ("eval a run of another task", "eval --task mug_hang --policy base --out e"),
    ("eval an export of another task", "eval --task mug_hang --policy export --out e"),
    ("corrupt HDF5", "train-base --task pick_place --data garbage.hdf5 --out b"),
    ("truncated HDF5", "train-base --task pick_place --data cut.hdf5 --out b"),
    ("truncated safetensors (train-steer)", "train-steer --base base_cut --out s"),
    ("truncated safetensors (eval)", "eval --policy base_cut --out e"),
    ("truncated agent.pt", "export --run steer_cut --out o"),
    ("truncated run checkpoint on resume", "train-base --data good.hdf5 --horizon 4 --out b_ck --resume"),
    ("truncated ONNX", "eval --policy export_cut --out e"),
    ("damaged run config.yaml", "export --run steer_yaml --out o"),
    ("NaN in a dataset (actions)", "train-base --task pick_place --data nan.hdf5 --out b"),
    ("NaN/Inf in a dataset (state)", "train-base --task pick_place --data inf_state.hdf5 --out b"),
    ("unknown observation layout", "train-base --task pick_place --data joints.hdf5 --obs state --out b"),
    ("demo action size vs task", "train-base --task pick_place --data act3.hdf5 --out b"),
    ("policy action size vs task (eval)", "eval --policy base_wide --out e"),
    ("base action size vs task (train-steer)", "train-steer --base base_wide --n-envs 1 --out s2"),
    ("no best checkpoint yet", "export --run steer --checkpoint best --out o"),
    ("--checkpoint on a base run", "export --run base --checkpoint best --out o"),
    ("pipeline stage fails (NaN demos)", "pipeline --n-demos 2 --bc-steps 2 --out p"),
    ("zero demos", "demos --n-demos 0 --out d0.hdf5"),
    ("zero trials", "eval --trials 0 --out e0"),
    ("negative rows", "eval --rows -1 --out e0"),
    ("zero BC steps", "train-base --data good.hdf5 --bc-steps 0 --out b0"),
    ("zero UTD", "train-steer --base base --utd 0 --out s0"),
    ("warm-up at the budget", "train-steer --base base --env-steps 1000 --warmup-steps 1000 --out s0"),
    ("delta <= 0", "train-steer --base base --delta -1 --out s0"),
    ("wrong flag type", "train-steer --base base --utd abc --out s0"),
    ("bad choice", "train-steer --base base --tr-norm l2 --out s0"),
    ('YAML string for a bool (use_eps: "false")', "train-steer --base base --config bool.yaml --out s0"),
    ("YAML 1e-3 (a string to PyYAML) works; the next key is refused", "train-steer --base base --config lr.yaml --out s0"),
    ("YAML typo", "train-steer --base base --config typo.yaml --out s0"),
    ("scalar where a list is needed", "train-steer --base base --config list.yaml --out s0"),
    ("conflicting flags on resume", "train-steer --out steer --resume --delta 1 --seed 4 --algo lpds-a"),
    ("zero env steps (toy)", "toy --env-steps 0"),
    ("ros-sim: zero rate", "ros-sim --rate 0"),
    ("ros-sim: onnx runner without a model", "ros-sim --runner onnx"),
    ("ros-sim: a node that fails to start", "ros-sim --backend kinematic --max-trials 1 --runner onnx "
                                            "--model-dir no_such_export --out rs"),
]
NO_PROGRESS = ("train-base", "train-steer", "eval", "demos", "toy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/lpds_errors", help="scratch folder (emptied first: the script owns it)")
    args = ap.parse_args()
    work = Path(args.work)
    if work.exists():
        if not (work / ".lpds_error_table").exists():
            raise SystemExit(f"--work {work} exists and was not made by this script; choose another folder")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / ".lpds_error_table").write_text("")
    fixtures(work)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / "src" / p) for p in ("lpds_core", "lpds_sim",
                                                                                        "lpds_ros"))}
    print("| bad input | command | the one line it prints (exit 2) |\n|---|---|---|")
    bad = 0
    for what, cmd in CASES:
        argv = cmd.split() + (["--no-progress"] if cmd.split()[0] in NO_PROGRESS else [])
        res = subprocess.run([sys.executable, "-m", "lpds_sim.cli", *argv], capture_output=True, text=True,
                             env=env, cwd=work, timeout=300)
        lines = res.stderr.strip().splitlines()
        ok = res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.stderr
        bad += not ok
        shown = " / ".join(lines).replace("|", "\\|")
        print(f"| {what} | `lpds {cmd}` | {shown} |" + ("" if ok else f" **NOT ONE LINE: rc={res.returncode}**"),
              flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
