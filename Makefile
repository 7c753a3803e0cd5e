# LP-DS: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
# Both are idempotent: a second run only redoes what changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lpds-installed
APT_PKGS := liblapack3 xvfb xauth libgl1 libglu1-mesa libglx-mesa0 libgl1-mesa-dri libxrandr2 libxxf86vm1 libxi6 libfreetype6 libpng16-16 libusb-1.0-0 iproute2 util-linux
# RAI renders through GLX: without a display, run under a virtual one
XRUN := $(if $(DISPLAY),,xvfb-run -a -s "-screen 0 1024x768x24")
OUT ?= runs/demo
# the demo's steering budget (the pipeline's default is 100k): half of it keeps `make demo` under 15 minutes on 2 cores
DEMO_ENV_STEPS ?= 50000
ROS_PKGS := $(wildcard src/lpds_ros/setup.py)
PIP_EDITABLE := -e src/lpds_core -e src/lpds_sim $(if $(ROS_PKGS),-e src/lpds_ros,)

.PHONY: setup apt venv demo test bench colcon clean

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt src/lpds_core/pyproject.toml src/lpds_sim/pyproject.toml $(ROS_PKGS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps $(PIP_EDITABLE)
	touch $@

# the main job: demos -> base -> LP-DS -> ONNX -> grid (base vs steered), then the same exported policy
# driven through the ROS 2 graph (separate processes over DDS) against the RAI sim robot
demo: setup
	$(XRUN) $(BIN)/lpds pipeline --task pick_place --grade-worlds reality --env-steps $(DEMO_ENV_STEPS) --out $(OUT)/pick_place
	@# the ROS grid of this export: one folder per exported model (its digest), so a rerun skips a finished grid
	@# and a new model never overwrites the bags of an earlier one
	@ros=$(OUT)/ros_grid/$$(sha256sum $(OUT)/pick_place/export/decoder.onnx | cut -c1-12); \
	if [ -f $$ros/grid_results.json ]; then echo "ROS grid of this export already done: $$ros"; \
	else $(XRUN) $(BIN)/lpds ros-sim --task pick_place --model-dir $(OUT)/pick_place/export --max-trials 8 \
	  --trials 1 --speedup 3 --out $$ros || exit $$?; fi; \
	echo "report: $(OUT)/pick_place/report.md   ROS grid: $$ros/grid_results.json (one MCAP bag per trial in $$ros/bags)"

test: setup
	$(XRUN) $(BIN)/python -m pytest

bench: setup
	$(XRUN) $(BIN)/python bench/toy.py
	$(XRUN) $(BIN)/python bench/rai_env.py
	$(XRUN) $(BIN)/python bench/onnx_latency.py
	$(XRUN) $(BIN)/python bench/ros_latency.py --ticks 1000 --trials 5 --speedup 3
	$(XRUN) $(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) build install log runs .pytest_cache

# ROS 2 package (lpds_ros): ament_python build into ./install (what a ROS workspace / the robot image does)
colcon: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/colcon build --base-paths src
