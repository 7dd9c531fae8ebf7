# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv with torch pinned (constraints.txt) to the local CPU build.
# `make demo` installs what the demo needs (core, plugin, example); `make test` adds the test,
# docs, distributed and benchmark extras (MONAI, sphinx, dask, PyEPO, gurobipy, ...) on top.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --constraint constraints.txt
DEMO_STAMP := $(VENV)/.installed-demo
STAMP  := $(VENV)/.installed
PACKAGES := pyproject.toml plugins/stardp/pyproject.toml examples/lv_segmentation/pyproject.toml

.PHONY: install install-demo test demo docs docs-check bench clean

install: $(STAMP)
install-demo: $(DEMO_STAMP)

# the core, the star-DP plugin and the LV example (its own dependencies: pydicom, nibabel, ...)
$(DEMO_STAMP): $(PACKAGES) constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) torch==2.13.0
	$(PIP) -e . -e plugins/stardp -e examples/lv_segmentation
	touch $(DEMO_STAMP)

# everything: the demo's install plus the extras the tests, docs and benchmarks need
$(STAMP): $(DEMO_STAMP)
	$(PIP) -e '.[test,docs,distributed,bench,example]' -e plugins/stardp -e examples/lv_segmentation
	touch $(STAMP)

# OMP_WAIT_POLICY=PASSIVE: idle torch threads sleep instead of spinning (on 2 shared cores a
# spinning pool made small torch steps 10-30x slower; measured in the LV tests).
test: export OMP_WAIT_POLICY = PASSIVE
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests README.md \
		--doctest-modules diffbypass plugins/stardp/diffbypass_stardp examples/lv_segmentation/lvseg
	$(MAKE) docs-check

docs: $(STAMP)
	$(BIN)/python -m sphinx -b html docs docs/_build/html

# warnings are errors; then the doctests in the docs pages
docs-check: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html -q
	$(BIN)/python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest -q

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

# the studies that benchmarks/registry.py marks in_bench (python -m benchmarks list)
bench: $(STAMP)
	$(BIN)/python -m benchmarks run-all

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .hypothesis
