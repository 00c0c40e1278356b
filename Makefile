# make test: install everything from nothing (scripts/setup.sh) and run the tests.
VENV := .venv

.PHONY: setup test demo lint bench

setup:
	bash scripts/setup.sh

test: setup
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/silkwatch demo

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every bench/bench_*.py prints its medians and ratios against a baseline from the same run.
bench: setup
	@set -e; for script in bench/bench_*.py; do \
		[ -e "$$script" ] || { echo "no bench/bench_*.py yet"; break; }; \
		echo "== $$script"; $(VENV)/bin/python "$$script"; \
	done
