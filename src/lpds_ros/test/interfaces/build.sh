#!/usr/bin/env bash
# Build the test-only interface packages (franka_msgs, control_msgs stand-ins) with the rosidl wheels of the venv.
#   build.sh CACHE_DIR [PYTHON]      -> CACHE_DIR/install/setup.bash (source it in the process that imports them)
# Reused while the .msg/.action/CMake files, this script and the ROS wheels are unchanged (hash in CACHE_DIR/.hash).
# Never writes into the venv: the wheels' exported CMake targets hard-code the wheel-build machine's Python/numpy
# include dirs, so the build runs against an overlay prefix of symlinks with repointed copies of those few files.
# Only the tests source the result: a robot PC's real franka_msgs/control_msgs are never shadowed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:?usage: build.sh CACHE_DIR [PYTHON]}
PY=${2:-python3}
VENV=$("$PY" -c 'import sys; print(sys.prefix)')
MARK=.lpds-test-interfaces
mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock" && flock 9  # two test runs at once: the second waits, then finds the cache up to date
HASH=$( (cd "$HERE" && find . -type f \( -name '*.msg' -o -name '*.action' -o -name CMakeLists.txt \
          -o -name package.xml -o -name build.sh \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum;
         echo "$VENV"; ls "$VENV"/lib/python*/site-packages | grep -iE '^(ros_|colcon).*dist-info$') \
       | sha256sum | cut -d' ' -f1)  # ... and the rosidl/ROS wheel versions: a pin bump rebuilds
if [ -f "$CACHE/.hash" ] && [ "$(cat "$CACHE/.hash")" = "$HASH" ] && [ -f "$CACHE/install/setup.bash" ]; then
  echo "test interfaces: up to date in $CACHE"; exit 0
fi
if [ -e "$CACHE" ]; then
  [ -f "$CACHE/$MARK" ] || { echo "error: $CACHE exists and was not made by build.sh: remove it or pick another"; exit 2; }
  rm -rf "$CACHE"
fi
mkdir -p "$CACHE/src" "$CACHE/prefix/share" && touch "$CACHE/$MARK"
CACHE=$(cd "$CACHE" && pwd)

# overlay prefix: symlinks to the venv, real copies only of the CMake files that name missing include dirs
PYINC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy; print(numpy.get_include())")
for e in "$VENV"/*; do [ "$(basename "$e")" = share ] || ln -s "$e" "$CACHE/prefix/"; done
for pkg in "$VENV"/share/*; do
  name=$(basename "$pkg")
  bad=$(grep -rl --include='*.cmake' /opt/python/ "$pkg" 2>/dev/null || true)
  if [ -z "$bad" ]; then ln -s "$pkg" "$CACHE/prefix/share/$name"; continue; fi
  mkdir "$CACHE/prefix/share/$name"
  for e in "$pkg"/*; do [ "$(basename "$e")" = cmake ] || ln -s "$e" "$CACHE/prefix/share/$name/"; done
  mkdir "$CACHE/prefix/share/$name/cmake"
  for f in "$pkg"/cmake/*; do
    if grep -q /opt/python/ "$f"; then
      sed -e "s#/opt/python/cp[0-9]*-cp[0-9]*/include/python[0-9.]*#$PYINC#g" \
          -e "s#/opt/python/cp[0-9]*-cp[0-9]*/lib/python[0-9.]*/site-packages/numpy/_core/include#$NPINC#g" \
          "$f" > "$CACHE/prefix/share/$name/cmake/$(basename "$f")"
    else
      ln -s "$f" "$CACHE/prefix/share/$name/cmake/"
    fi
  done
done

cp -r "$HERE/franka_msgs" "$HERE/control_msgs" "$CACHE/src/"
cd "$CACHE"
export AMENT_PREFIX_PATH="$CACHE/prefix" CMAKE_PREFIX_PATH="$CACHE/prefix" PATH="$VENV/bin:$PATH"
unset COLCON_PREFIX_PATH
"$VENV/bin/colcon" --log-base log build --base-paths src --build-base build --install-base install \
  --event-handlers console_direct- --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$(command -v "$PY")" \
  > build.log 2>&1 || { tail -40 build.log; echo "error: test interface build failed (log: $CACHE/build.log)"; exit 1; }
echo "$HASH" > .hash
echo "test interfaces: built in $CACHE"
