# agricare: two commands on a fresh Debian 12 / Python 3.11 machine.
#   make demo   set up, run the farm and care scenarios in the embedded simulator, write out/
#   make test   set up, colcon build + colcon test (pytest) + ruff
# ROS 2 comes from pip (ros-kilted-* wheels) into .venv; the interface packages are built with colcon
# straight into the venv prefix, so .venv/bin/agricare and every node run without sourcing anything.

SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# chromium + chromium-driver: the operator app's browser tests (selenium drives Debian's headless Chromium);
# pkg-config + libsdformat-dev (sdformat 12, the parser Gazebo uses): test/test_gazebo_sdformat.py loads the worlds
# postgresql: the app's database tests start a throwaway cluster (initdb/pg_ctl in a temp dir; ~19 MB download)
APT_PACKAGES := python3-venv python3-dev cmake g++ make liburdfdom-tools chromium chromium-driver pkg-config \
                libsdformat-dev postgresql

export AMENT_PREFIX_PATH := $(VENV)
export CMAKE_PREFIX_PATH := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export ROS_DOMAIN_ID ?= 42

INTERFACE_FILES := $(shell find interfaces -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: venv test demo sysdeps lint clean build colcon-test

venv: $(VENV)/.stamp-agricare

# Debian packages the project needs (also run by make venv once per venv)
sysdeps:
	@rm -f $(VENV)/.stamp-sysdeps
	@$(MAKE) --no-print-directory $(VENV)/.stamp-sysdeps

# Debian packages: only when something is missing (CI runs as root on a clean machine).
$(VENV)/.stamp-sysdeps:
	@missing=""; \
	for c in cmake g++ make check_urdf chromium chromedriver; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	pkg-config --exists sdformat12 2>/dev/null || missing="$$missing sdformat12"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing venv"; \
	if [ -n "$$missing" ]; then \
	  echo "sysdeps: missing$$missing -> apt-get install $(APT_PACKAGES)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(VENV)/bin/python: | $(VENV)/.stamp-sysdeps
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-reqs: requirements.txt constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) tools/fix_wheel_cmake_paths.py $(VENV)
	touch $@

$(VENV)/.stamp-interfaces: $(VENV)/.stamp-reqs $(INTERFACE_FILES)
	colcon --log-base build/log build --base-paths interfaces --build-base build/interfaces \
	  --install-base $(VENV) --merge-install \
	  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$(PY) -DCMAKE_BUILD_TYPE=Release
	touch $@

$(VENV)/.stamp-agricare: $(VENV)/.stamp-interfaces setup.py setup.cfg package.xml $(wildcard src/agricare/nodes/*.py)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The ament_python package built and tested the ROS way, against the pip ROS 2 in the venv.
build: venv
	colcon --log-base build/log build --base-paths . --packages-select agricare \
	  --build-base build --install-base install --symlink-install

colcon-test: build
	colcon --log-base build/log test --base-paths . --packages-select agricare \
	  --build-base build --install-base install \
	  --event-handlers console_direct+ --return-code-on-test-failure \
	  --pytest-args -p no:cacheprovider -q

lint: venv
	$(VENV)/bin/ruff check .

test: venv
	@rc=0; \
	$(MAKE) --no-print-directory colcon-test || rc=1; \
	colcon --log-base build/log test-result --test-result-base build/agricare --verbose || rc=1; \
	echo "== ruff check"; $(VENV)/bin/ruff check . || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED"; else echo "make test: all passed"; fi; \
	exit $$rc

demo: venv
	$(VENV)/bin/agricare demo --out out

clean:
	rm -rf build install log out
