"""Pictures of a grid evaluation that people look at: end-effector trajectories, short GIFs, base-vs-steered heatmaps.

A success rate says how often a policy succeeds, not how it moves. `EpisodeRecorder` wraps the evaluation env and
records, per trial, the end-effector position at the reset and after every control step, the object's start and
the target (tray / holder) position — a few kB per trial — and, for the first `videos` trials only, small frames
from the task camera. `write_pictures` saves them beside the grid results:

    OUT/grid_trajectories.npz   OUT/trajectories.png   OUT/videos/trial_000.gif ...

With `videos=0` nothing is rendered (no camera, no display needed): the recording is three position reads per step.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

TRAJECTORIES = "grid_trajectories.npz"
TRAJECTORY_PNG = "trajectories.png"
VIDEO_DIR = "videos"
GRID_PAIR_PNG = "grid_base_vs_steered.png"
VIDEO_WIDTH = 160      # px: frames are square, small enough that a GIF stays a few hundred kB
FRAME_EVERY = 2        # a frame every 2nd control step (5 fps of 10 Hz control, played back at real time)
SUCCESS_COLOUR, FAILURE_COLOUR = "tab:green", "tab:red"


class EpisodeRecorder(gym.Wrapper):
    """Records every episode's end-effector path (row 0: the position after the reset, row i: after step i, so an
    episode of L steps has L + 1 rows), object start and target; renders the first `videos` episodes."""

    keeps_observations = True  # hands observations through unchanged (lpds_core.chunking.render_skipper)

    def __init__(self, env: gym.Env, videos: int = 0, frame_every: int = FRAME_EVERY, width: int = VIDEO_WIDTH):
        super().__init__(env)
        self.videos, self.frame_every, self.width = int(videos), int(frame_every), int(width)
        self.paths: list[list[np.ndarray]] = []
        self.object_start: list[np.ndarray] = []
        self.target: list[np.ndarray] = []
        self.frames: list[list[np.ndarray]] = []   # one list per rendered episode (the first `videos`)
        self._camera = None

    def _ee(self) -> np.ndarray:
        return np.array(self.env.unwrapped.ee_pose()[0], dtype=np.float32)

    def _frame(self) -> np.ndarray:
        """A frame of the task camera at `width` px, without sensor noise (the same renderer as the image
        observations and `env.render()`, at a size people can see). Full meshes, not the camera's `fast` convex
        hulls: making those changed the physics of every env built later in the process (36/40 instead of 40/40
        for the scripted operator), and rendering must never change a result; 40 ms instead of 15 ms a frame."""
        if self._camera is None:
            from lpds_sim.rai.camera import RGBDCamera, SensorNoise

            u = self.env.unwrapped
            spec = dataclasses.replace(u._cam_spec, size=self.width, noise=SensorNoise.off())
            self._camera = RGBDCamera(u.C, spec, fast=False)
        rgb, _ = self._camera.render(None)
        return rgb.transpose(1, 2, 0).copy()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        u = self.env.unwrapped
        self.paths.append([self._ee()])
        self.object_start.append(np.array(u._obj_frame().getPosition(), dtype=np.float32))
        self.target.append(np.array(u._target_pos(), dtype=np.float32))
        if len(self.paths) <= self.videos:
            self.frames.append([self._frame()])
        return obs, info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        path = self.paths[-1]
        path.append(self._ee())
        if len(self.paths) <= self.videos and ((len(path) - 1) % self.frame_every == 0 or term or trunc):
            self.frames[-1].append(self._frame())
        return obs, r, term, trunc, info

    def close_camera(self) -> None:
        """Release the video camera (before the X server goes away); the wrapped env stays open."""
        if self._camera is not None:
            self._camera.release()
            self._camera = None

    def close(self):
        self.close_camera()
        return self.env.close()

    def write(self, out: str | os.PathLike, result: Any, title: str = "") -> dict[str, Path]:
        """Save the trials of `result` (a GridResult: its successes colour the paths) into `out`: the npz, the
        figure and the GIFs. An episode that was cut short by Ctrl-C (not in `result`) is dropped."""
        out = Path(out)
        n = len(result.trials)
        paths = {"trajectories": save_trajectories(
            out / TRAJECTORIES, [np.stack(p) for p in self.paths[:n]], self.object_start[:n], self.target[:n],
            [t.index for t in result.trials], [t.cell for t in result.trials], [t.success for t in result.trials])}
        paths["trajectories_png"] = plot_trajectories(out / TRAJECTORIES, out / TRAJECTORY_PNG, title=title)
        for i, frames in enumerate(self.frames[:n]):
            paths[f"video_{i}"] = write_gif(out / VIDEO_DIR / f"trial_{result.trials[i].index:03d}.gif", frames)
        return paths


def save_trajectories(path: str | os.PathLike, ee: Sequence[np.ndarray], object_start: Sequence[np.ndarray],
                      target: Sequence[np.ndarray], index: Sequence[int], cell: Sequence[tuple[int, int]],
                      success: Sequence[bool]) -> Path:
    """One compressed npz: `ee` (all trials' rows stacked, float32 metres, world frame) and `offsets` (trial i is
    ee[offsets[i]:offsets[i+1]]), per trial `object_start` (3), `target` (3), `index`, `cell`, `success`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lens = [len(p) for p in ee]
    np.savez_compressed(
        path, ee=np.concatenate(ee).astype(np.float32) if ee else np.zeros((0, 3), np.float32),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        object_start=np.asarray(object_start, np.float32).reshape(-1, 3),
        target=np.asarray(target, np.float32).reshape(-1, 3), index=np.asarray(index, np.int64),
        cell=np.asarray(cell, np.int64).reshape(-1, 2), success=np.asarray(success, bool))
    return path


def load_trajectories(path: str | os.PathLike) -> dict[str, Any]:
    """The npz of `save_trajectories`, with `paths`: one (L + 1, 3) array per trial."""
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["paths"] = [d["ee"][a:b] for a, b in zip(d["offsets"][:-1], d["offsets"][1:])]
    return d


def sample_trials(n_trials: int, k: int = 10, seed: int = 0) -> np.ndarray:
    """The trials a figure shows: a fixed seeded choice of `k` (all of them when there are fewer), in order, so
    base and steered figures of the same grid show the same start states."""
    if n_trials <= k:
        return np.arange(n_trials)
    return np.sort(np.random.default_rng(seed).choice(n_trials, k, replace=False))


def plot_trajectories(npz: str | os.PathLike, path: str | os.PathLike, title: str = "", k: int = 10,
                      seed: int = 0) -> Path:
    """Top-down (x–y) and side (x–z) views of `k` sampled trials' end-effector paths; successes green, failures
    red; the end-effector start, the object start and the target marked."""
    fig = trajectory_figure(load_trajectories(npz), title, k, seed)  # selects the Agg backend first
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def trajectory_figure(d: dict[str, Any], title: str = "", k: int = 10, seed: int = 0):
    """The figure of `plot_trajectories` (not saved); each path line's gid is "trial <grid index>"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = sample_trials(len(d["paths"]), k, seed)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (j, name) in zip(axes, ((1, "y"), (2, "z"))):
        for i in pick:
            p, ok = d["paths"][i], bool(d["success"][i])
            ax.plot(p[:, 0], p[:, j], color=SUCCESS_COLOUR if ok else FAILURE_COLOUR, lw=1.2, alpha=0.8,
                    label="success" if ok else "failure", gid=f"trial {int(d['index'][i])}")
            ax.plot(p[0, 0], p[0, j], "s", color="black", ms=4, label="end-effector start", zorder=3)
        if len(pick):
            ax.plot(d["object_start"][pick, 0], d["object_start"][pick, j], "o", mfc="none", color="tab:blue",
                    ms=7, label="object start", zorder=3)
            ax.plot(d["target"][pick, 0], d["target"][pick, j], "*", color="tab:orange", ms=14, mec="black",
                    label="target", zorder=3)
        ax.set_xlabel("x (m)")
        ax.set_ylabel(f"{name} (m)")
        ax.set_title("top-down (x–y)" if name == "y" else "side view (x–z)")
        ax.grid(alpha=0.3)
        if name == "y":
            ax.set_aspect("equal", adjustable="datalim")
    handles = {}
    for h, lab in zip(*axes[0].get_legend_handles_labels()):
        handles.setdefault(lab, h)
    order = [lab for lab in ("success", "failure", "end-effector start", "object start", "target") if lab in handles]
    axes[1].legend([handles[lab] for lab in order], order, fontsize=8, loc="best")
    ok = int(np.sum(d["success"][pick])) if len(pick) else 0
    fig.suptitle(f"{title + ': ' if title else ''}end-effector paths of {len(pick)} of {len(d['paths'])} trials "
                 f"({ok} of them successes)")
    fig.tight_layout()
    return fig


def write_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 10.0 / FRAME_EVERY) -> Path:
    """An endlessly looping GIF (pillow; no ffmpeg) at real-time speed."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, list(frames), duration=1000.0 / fps, loop=0)
    return path


def clear_videos(out: str | os.PathLike) -> None:
    """Remove the GIFs an earlier evaluation wrote into `out` (they would show other trials than the new grid);
    only files named as this module names them."""
    for p in (Path(out) / VIDEO_DIR).glob("trial_*.gif"):
        p.unlink()


def videos_in(folder: str | os.PathLike) -> list[Path]:
    return sorted((Path(folder) / VIDEO_DIR).glob("trial_*.gif"))


def plot_grid_pair(base: str | os.PathLike, steered: str | os.PathLike, path: str | os.PathLike,
                   title: str = "") -> Path:
    """Base and steered grid heatmaps side by side on one colour scale (the two grid_results.json folders); each
    title says successes/trials, a cell that never ran is grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads((Path(f) / "grid_results.json").read_text()) for f in (base, steered)]
    rows, cols = docs[0]["rows"], docs[0]["cols"]
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="lightgrey")
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.4 * cols + 0.6) + 1.5, 1.4 * rows + 1.4))
    im = None
    for ax, name, doc in zip(axes, ("base", "steered"), docs):
        s, n = np.asarray(doc["success_table"]), np.asarray(doc["trials_table"])
        rate = np.ma.masked_where(n == 0, s / np.maximum(n, 1))
        im = ax.imshow(rate, vmin=0, vmax=1, cmap=cmap, origin="lower")
        for r in range(doc["rows"]):
            for c in range(doc["cols"]):
                ax.text(c, r, f"{s[r, c]}/{n[r, c]}" if n[r, c] else "not run", ha="center", va="center",
                        fontsize=10)
        ax.set_xticks(range(doc["cols"]))
        ax.set_yticks(range(doc["rows"]))
        ax.set_xlabel("col (x)")
        ax.set_ylabel("row (y, away from robot)")
        partial = " (partial)" if doc.get("partial") else ""
        ax.set_title(f"{name}: {doc['successes']}/{doc['total']}{partial}")
    fig.colorbar(im, ax=list(axes), label="success rate")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
