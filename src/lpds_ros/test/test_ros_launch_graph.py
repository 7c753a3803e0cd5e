"""Launch files <-> graph description: each launch file, parsed and built with stub `launch`/`launch_ros` modules
(only when the real ones are missing), must produce exactly the node list of lpds_ros.graph."""
from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from lpds_ros import graph
from lpds_ros.launch_support import graph_from_arguments

LAUNCH_DIR = Path(__file__).resolve().parents[3] / "launch"  # the repository's top-level launch/
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))


def _real_launch_available() -> bool:
    return importlib.util.find_spec("launch") is not None and importlib.util.find_spec("launch_ros") is not None


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.launch_configurations[self.name]


class _LaunchDescription:
    def __init__(self, entities):
        self.entities = list(entities)


def _stub_modules() -> dict[str, types.ModuleType]:
    mods = {n: types.ModuleType(n) for n in ("launch", "launch.actions", "launch.substitutions",
                                             "launch.launch_description_sources", "launch_ros",
                                             "launch_ros.actions", "launch_ros.substitutions")}
    mods["launch"].LaunchDescription = _LaunchDescription
    a = mods["launch.actions"]
    a.DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorder,), {})
    a.OpaqueFunction = type("OpaqueFunction", (_Recorder,), {})
    a.IncludeLaunchDescription = type("IncludeLaunchDescription", (_Recorder,), {})
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch.substitutions"].PathJoinSubstitution = type("PathJoinSubstitution", (_Recorder,), {})
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = type("PyLDS", (_Recorder,), {})
    mods["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    mods["launch_ros.substitutions"].FindPackageShare = type("FindPackageShare", (_Recorder,), {})
    return mods


@pytest.fixture
def stub_launch(monkeypatch):
    if _real_launch_available():
        pytest.skip("real launch/launch_ros present: covered by `ros2 launch --print` in the colcon job")
    for name, mod in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build(mod, overrides: dict[str, str]):
    ld = mod.generate_launch_description()
    declared = {e.args[0] if e.args else e.kwargs["name"]: e.kwargs["default_value"]
                for e in ld.entities if type(e).__name__ == "DeclareLaunchArgument"}
    opaque = [e for e in ld.entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    ctx = types.SimpleNamespace(launch_configurations={**declared, **overrides})
    return declared, opaque[0].kwargs["function"](ctx)


def test_every_launch_file_parses():
    assert {p.name for p in LAUNCH_FILES} == {"pick_place.launch.py", "mug_hang.launch.py", "grid_eval.launch.py",
                                              "train_rai.launch.py"}
    for p in LAUNCH_FILES:
        tree = ast.parse(p.read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)


CASES = [
    ("pick_place.launch.py", {}),
    ("pick_place.launch.py", {"use_sim": "false", "robot_ip": "10.0.0.2", "namespace": "NS_1",
                              "controller": "joint_trajectory", "start_drivers": "true", "model_dir": "/m"}),
    ("mug_hang.launch.py", {"model_dir": "/models/mug"}),
    ("grid_eval.launch.py", {"episodes": "3", "sim_backend": "kinematic", "runner": "scripted"}),
    ("grid_eval.launch.py", {"use_sim": "false"}),
    ("train_rai.launch.py", {"config": "/cfg.yaml"}),
]


@pytest.mark.parametrize("fname,overrides", CASES)
def test_launch_file_builds_the_graph(stub_launch, fname, overrides):
    mod = _load(LAUNCH_DIR / fname)
    declared, actions = _build(mod, overrides)
    if fname == "pick_place.launch.py":
        assert {"use_sim", "robot_ip", "model_dir", "namespace", "controller"} <= set(declared)
    nodes, includes = graph_from_arguments(fname.split(".")[0], mod.ARGUMENTS, {**declared, **overrides})
    launched = [a.kwargs for a in actions if type(a).__name__ == "Node"]
    expected = [dict(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace,
                     parameters=[dict(n.parameters)], remappings=list(n.remappings), output=n.output) for n in nodes]
    assert launched == expected
    assert len([a for a in actions if type(a).__name__ == "IncludeLaunchDescription"]) == len(includes)
    names = [n["name"] for n in launched]
    assert len(names) == len(set(names))
    sim = overrides.get("use_sim", "true") == "true"
    assert ("sim_robot" in names) == sim
    if fname == "grid_eval.launch.py":
        ev = next(n for n in launched if n["name"] == "grid_evaluator")
        assert ev["parameters"][0]["mode"] == ("auto" if sim else "operator")
    if overrides.get("start_drivers") == "true":
        inc = [a for a in actions if type(a).__name__ == "IncludeLaunchDescription"]
        assert dict(inc[0].kwargs["launch_arguments"])["robot_ip"] == "10.0.0.2"


def test_graph_rejects_unknown_parameters_and_controllers():
    with pytest.raises(ValueError, match="no parameter"):
        graph.NodeSpec("policy_node", "policy", parameters={"bogus": 1})
    with pytest.raises(ValueError, match="unknown executable"):
        graph.NodeSpec("teleporter", "t")
    with pytest.raises(ValueError, match="controller"):
        graph.pick_place_graph(controller="torque")


def test_graph_executables_are_console_scripts_and_modules():
    setup_py = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    for exe in graph.NODE_PARAMETERS:
        assert f'"{exe}"' in setup_py
        assert importlib.util.find_spec(f"lpds_ros.{exe}") is not None


def test_ros_args_and_params_file(tmp_path):
    import yaml

    spec = graph.NodeSpec("policy_node", "policy", "ns1", {"control_rate": 30.0}, (("a", "b"),))
    args = graph.ros_args(spec, "/p.yaml")
    assert args[:3] == ["--ros-args", "-r", "__node:=policy"] and "__ns:=/ns1" in args and "a:=b" in args
    path = graph.write_params_file(spec, str(tmp_path))
    assert yaml.safe_load(open(path)) == {"/**": {"ros__parameters": {"control_rate": 30.0}}}


def test_sim_box_matches_the_env():
    """The policy's default workspace box is the sim env's EE box (so ROS and direct evaluation agree)."""
    pytest.importorskip("robotic")
    from lpds_sim.rai.panda_env import PandaTaskEnv

    p = graph.NODE_PARAMETERS["policy_node"]
    assert p["box_min"] == pytest.approx(list(PandaTaskEnv.ee_low))
    assert p["box_max"] == pytest.approx(list(PandaTaskEnv.ee_high))
