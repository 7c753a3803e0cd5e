"""LP-DS on ROS 2.

ROS-free building blocks (safety filter, time matching, watchdog, image codec, preprocessing, chunk scheduler,
graph description) live in plain modules with their own tests; the `*_node` modules are thin rclpy shells over them.
"""
