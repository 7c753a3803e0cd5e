"""package.xml declares what the package needs: every module the nodes and launch files import is a declared
dependency (or this package, the standard library, lpds_core, or a simulation-side module imported lazily)."""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parents[1]
PYTHON_KEYS = {"numpy": "python3-numpy", "yaml": "python3-yaml", "onnxruntime": "python3-onnxruntime-pip",
               "cv2": "python3-opencv", "rosbags": "python3-rosbags-pip", "matplotlib": "python3-matplotlib"}
SIM_ONLY = {"lpds_sim", "robotic", "torch", "gymnasium"}  # never on the robot PC: only lazily, in these modules
SIM_SIDE = {"rai_backend.py", "demo_model.py", "train_hooks.py"}
ROBOT_ONLY = {"franka_msgs": "franka_msgs", "pyrealsense2": None}  # lazy, on the robot PC (None: optional pip)


def _declared() -> dict[str, str | None]:
    root = ET.parse(PKG / "package.xml").getroot()
    return {e.text.strip(): e.get("condition") for e in root if e.tag in ("depend", "exec_depend")}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, imported at module level) for every absolute import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], id(node) in top))
    return out


def test_package_xml_declares_every_import():
    declared = _declared()
    files = sorted((PKG / "lpds_ros").glob("*.py")) + sorted((REPO / "launch").glob("*.launch.py"))
    assert len(files) > 20
    missing = []
    for f in files:
        for mod, module_level in _imports(f):
            if mod in sys.stdlib_module_names or mod in ("lpds_ros", "__future__"):
                continue
            if mod == "lpds_core":  # its deployment part needs numpy, onnxruntime, OpenCV: those must be declared
                need = [PYTHON_KEYS["numpy"], PYTHON_KEYS["onnxruntime"], PYTHON_KEYS["cv2"]]
            elif mod in SIM_ONLY:
                assert f.name in SIM_SIDE and not module_level, f"{f.name} imports {mod} (simulation only)"
                continue
            elif mod in ROBOT_ONLY:
                assert not module_level, f"{f.name} imports {mod} at module level (robot PC only: import lazily)"
                need = [ROBOT_ONLY[mod]] if ROBOT_ONLY[mod] else []
            else:
                need = [PYTHON_KEYS.get(mod, mod)]
            missing += [f"{f.name}: {mod} -> {k}" for k in need if k not in declared]
    assert not missing, "package.xml lacks: " + ", ".join(sorted(set(missing)))
    assert declared["franka_msgs"] == "$LPDS_ROBOT == 1" and declared["launch_ros"] is None
