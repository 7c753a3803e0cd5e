"""LP-DS core: the method (backbones, steering, critics, baselines, metrics, export). No ROS here."""
__version__ = "0.1.0"
