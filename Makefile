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

.PHONY: setup test demo demo-fashion-mnist bench clean system-deps

$(VENV)/deps.stamp: requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -r requirements-dev.txt
	touch $@

$(VENV)/build.stamp: $(VENV)/deps.stamp $(SOURCES) pyproject.toml
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

# Debian packages: Chromium renders the HTML report in the tests, and dataset-fashion-mnist
# is the full Fashion-MNIST (/usr/share/datasets/fashion-mnist). Installed when missing and
# this user may use apt-get (root, as on CI); otherwise the tests that need them skip.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	test -f $(FASHION_MNIST) || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: $$missing missing and apt-get unavailable; the tests that need them will be skipped"; fi; fi

setup: system-deps $(VENV)/build.stamp

test: setup
	$(PY) -m pytest tests orthocore --doctest-modules -q

demo: setup
	$(VENV)/bin/orthocore demo

demo-fashion-mnist: setup
	$(VENV)/bin/orthocore demo --data fashion-mnist

bench: setup
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,median,iqr,rounds --benchmark-group-by=group --benchmark-sort=name

clean:
	rm -rf build $(VENV) *.egg-info orthocore/_C*.so
