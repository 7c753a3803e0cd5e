"""RAI trainer node: runs LP-DS training in a background thread, publishes progress (std_msgs/String, JSON),
and after each ONNX export points the policy node at it (model_dir parameter) and calls its ~/reload.

The training itself is a hook (parameter `trainer`, "package.module:function", contract in lpds_ros.train_hooks);
the default drives lpds_sim's resumable train-steer run round by round. `config` is a YAML file of hook options.
"""
from __future__ import annotations

import importlib
import json
import threading
from typing import Any

import yaml
from lpds_core import jsonio
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String
from std_srvs.srv import Trigger

from .ros_common import declare_graph_parameters, run_node

def resolve_hook(spec: str):
    mod, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"trainer must be 'package.module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"trainer {spec!r} cannot be imported: {exc}") from exc


class TrainerNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("trainer", **kwargs)
        self.p = p = declare_graph_parameters(self, "trainer_node")
        self.hook = resolve_hook(p["trainer"])
        self.config = yaml.safe_load(open(p["config"])) if p["config"] else {}
        if not isinstance(self.config, dict):
            raise ValueError(f"trainer config {p['config']} must be a YAML mapping of hook options")
        self.pub = self.create_publisher(String, p["progress_topic"], 10)
        self.cli_reload = self.create_client(Trigger, f"{p['policy_name']}/reload")
        from rclpy.parameter_client import AsyncParameterClient

        self.policy_params = AsyncParameterClient(self, p["policy_name"])
        self.done, self.exit_code = False, 0
        self.reloads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._train, daemon=True)
        self._thread.start()

    def _publish(self, d: dict) -> None:
        self.pub.publish(String(data=jsonio.dumps(d, default=str)))

    def _train(self) -> None:
        log = self.get_logger()
        gen = self.hook(self.p["task"], self.p["out_dir"], self.config)
        try:
            for progress in gen:
                self._publish(progress)
                log.info(f"training progress: {json.dumps(progress, default=str)[:200]}")
                if "onnx_dir" in progress and self.p["reload_policy"]:
                    self._reload(str(progress["onnx_dir"]))
                if self._stop.is_set():
                    break
            self._publish({"finished": True})
        except Exception as exc:  # noqa: BLE001 - report, keep the policy running on the last good model
            log.error(f"training failed: {type(exc).__name__}: {exc}")
            self._publish({"error": f"{type(exc).__name__}: {exc}"})
            self.exit_code = 1
        finally:
            gen.close()
            self.done = True

    def _wait(self, fut, timeout: float):
        ev = threading.Event()
        fut.add_done_callback(lambda _f: ev.set())
        return fut.result() if ev.wait(timeout) else None

    def _reload(self, onnx_dir: str) -> None:
        log = self.get_logger()
        if not self.policy_params.wait_for_services(timeout_sec=5.0) or not self.cli_reload.wait_for_service(5.0):
            log.warning("policy node not reachable: new model not loaded")
            return
        self._wait(self.policy_params.set_parameters([Parameter("model_dir", value=onnx_dir)]), 10.0)
        resp = self._wait(self.cli_reload.call_async(Trigger.Request()), 30.0)
        ok = resp is not None and resp.success
        self.reloads += int(ok)
        self._publish({"reloaded": onnx_dir, "ok": ok, "message": getattr(resp, "message", "timeout")})

    def close(self) -> None:
        self._stop.set()


def main(args: list[str] | None = None) -> int:
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
