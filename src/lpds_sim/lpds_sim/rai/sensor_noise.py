"""`SensorNoise`: the emulated D435i imperfections applied to a rendered frame (`camera.observation_from_frame`).

Its own module (numpy only, no simulator) so that config schemas that nest it — the reality world
(`lpds_sim.rai.world`) — load without importing `robotic`. All zero = a perfect camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpds_core.config import setting

# a pixel whose depth differs from its left neighbour's by more than this lies on an object edge (stereo shadow)
EDGE_STEP_M = 0.02


@dataclass
class SensorNoise:
    """Emulated D435i imperfections; all zero = a perfect camera."""
    rgb_std: float = setting(4.0, "Gaussian pixel noise of the colour image, intensity units (0-255)", min=0.0)
    depth_std_per_m2: float = setting(0.002, "depth noise std per m² of depth (stereo error grows with z²), m",
                                      min=0.0)
    hole_frac: float = setting(0.01, "fraction of depth pixels dropped to 0 (invalid) at random", min=0.0, max=1.0)
    pose_pos_std: float = setting(0.005, "camera position jitter per episode (Gaussian per axis), m", min=0.0)
    pose_rot_std: float = setting(0.01, "camera rotation jitter per episode (Gaussian rotation vector), rad",
                                  min=0.0)
    edge_hole_frac: float = setting(0.0, "fraction of depth pixels on object edges (a > 2 cm step to the left "
                                    "neighbour: the stereo shadow) dropped to 0, as a RealSense does", min=0.0,
                                    max=1.0)

    @classmethod
    def off(cls) -> "SensorNoise":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def any_image_noise(self) -> bool:
        """Whether anything but the pose jitter is on (what the env records as `sensor_noise`)."""
        return self.rgb_std > 0 or self.depth_std_per_m2 > 0 or self.hole_frac > 0 or self.edge_hole_frac > 0


def edge_holes(depth: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """`depth` with `frac` of its edge pixels (depth step > EDGE_STEP_M to the left neighbour, where a stereo
    camera's projector and second imager cannot both see) set to 0: RealSense holes cluster at object borders,
    not uniformly over the image."""
    step = np.zeros(depth.shape, bool)
    step[..., 1:] = np.abs(np.diff(depth, axis=-1)) > EDGE_STEP_M
    drop = step & (rng.random(depth.shape) < frac)
    out = depth.copy()
    out[drop] = 0.0
    return out
