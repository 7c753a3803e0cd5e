"""Moved to lpds_core.image_preprocess (one transform for training and the robot); this name re-exports it."""
from lpds_core.image_preprocess import (PreprocessConfig, Preprocessor, crop_box, depth_to_metres,  # noqa: F401
                                        fill_holes, mark_holes, metres_to_depth_units, resize_depth, resize_rgb)
