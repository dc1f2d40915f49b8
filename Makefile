# Two entry points: `make demo` runs the quick sweep on a local stack, and
# `make test` runs the whole suite. Both create the virtual environment first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench install system-packages clean-cache

install: $(INSTALLED)

# torch and torchvision are pinned in pyproject.toml; pip takes them from a
# local wheel cache where one is configured, else from PyPI.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

demo: $(INSTALLED)
	$(BIN)/gatelab demo examples/quick-sweep.json

# Chromium (browser tests), docker-compose (compose file check) and
# Fashion-MNIST (out-of-distribution tests) come from Debian packages.
system-packages:
	@scripts/install-system-packages.sh

test: $(INSTALLED) system-packages
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run --output docs/benchmarks.md

clean-cache:
	rm -rf var/test-cache
