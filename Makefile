# Set-up and everyday commands. Each target does all of its set-up on a fresh machine:
# a virtual environment at .venv/, the pinned dependencies, and the extension build.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

# The machine's CUDA toolkit, when it has one: the CUDA kernels are compiled (not run)
# even where no GPU is visible, for the architectures below.
CUDA_HOME ?= $(firstword $(wildcard /usr/local/cuda))
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
export MAX_JOBS ?= 2

SOURCES := setup.py $(wildcard csrc/*.cpp csrc/*.h csrc/cpu/*.cpp csrc/cuda/*.cu csrc/cuda/*.cuh)

.PHONY: setup test demo bench clean system-deps

$(VENV)/deps.stamp: requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -r requirements-dev.txt
	touch $@

$(VENV)/build.stamp: $(VENV)/deps.stamp $(SOURCES) pyproject.toml
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

# Debian's Chromium renders the HTML report in the tests. Installed when missing and
# this user may use apt-get (root, as on CI); otherwise that one test is skipped.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing and apt-get unavailable; the report-rendering test will be skipped"; fi; }

setup: system-deps $(VENV)/build.stamp

test: setup
	$(PY) -m pytest tests orthocore --doctest-modules -q

demo: setup
	$(VENV)/bin/orthocore demo

bench: setup
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,median,iqr,rounds --benchmark-group-by=group --benchmark-sort=name

clean:
	rm -rf build $(VENV) *.egg-info orthocore/_C*.so
