#!/bin/bash
# Source ROS and the workspace, then run the command (ros2 launch ...).
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /ros2_ws/install/setup.bash
exec "$@"
