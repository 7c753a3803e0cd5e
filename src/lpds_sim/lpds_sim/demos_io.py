"""Demonstrations on disk: the robomimic-style HDF5 reader/writer lives in `lpds_core.demos_io` (numpy + h5py only,
so the robot PC's recorder writes the same files without the simulator); re-exported here for lpds_sim callers."""
from lpds_core.demos_io import (FORMAT_VERSION, DemoSet, Episode, append_demos, load_demos, read_meta,  # noqa: F401
                                stack_obs, write_demos)
