"""Dependencies run one way, core <- sim <- ros, and lpds_core's deployment part runs without torch or the simulator.

The import scan reads every module's source (imports inside functions too), so a lazy `import lpds_ros` in the
simulator package is caught as well as a top-level one.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
# package -> packages it must never import
FORBIDDEN = {"lpds_core": ("lpds_sim", "lpds_ros"), "lpds_sim": ("lpds_ros",)}
DEPLOYMENT_MODULES = ("lpds_core.onnx_policy", "lpds_core.grid_protocol", "lpds_core.errors",
                      "lpds_core.image_preprocess",  # numpy, onnxruntime and OpenCV only
                      "lpds_core.bench_profile")  # numpy and PyYAML
BLOCKED = ("torch", "robotic", "lpds_sim", "lpds_ros")


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_imports(package_dir: Path, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for name in imported_names(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(package_dir.parent)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_run_one_way(package):
    assert forbidden_imports(SRC / package / package, FORBIDDEN[package]) == []


def test_the_scan_sees_a_lazy_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f():\n    from lpds_ros.graph import NodeSpec\n    return NodeSpec\n")
    assert forbidden_imports(pkg, ("lpds_ros",)) == ["pkg/m.py imports lpds_ros.graph"]


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError(f'{{name}} is blocked: the robot PC does not have it')
sys.meta_path.insert(0, Block())
"""


def test_deployment_part_imports_without_torch_or_simulator():
    code = BLOCKER.format(blocked=BLOCKED) + "\n".join(f"import {m}" for m in DEPLOYMENT_MODULES) + \
        "\nprint(sorted(m for m in sys.modules if m.split('.')[0] in " + repr(BLOCKED) + "))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_blocker_blocks():
    code = BLOCKER.format(blocked=BLOCKED) + "import torch"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "blocked" in out.stderr
