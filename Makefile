.PHONY: run stop test setup screenshot

# Set everything up, start Alice, Bob and an Agents Playground for each; Ctrl-C stops it all.
run:
	python3 scripts/local_stack.py run

stop:
	python3 scripts/local_stack.py stop

setup:
	python3 scripts/local_stack.py setup

# Lint, type-check and run the whole test suite (what CI runs).
test:
	bash scripts/test.sh

# A screenshot of the handoff in the emulator, saved under .run/ (OUT=docs/... to refresh the README's).
screenshot:
	bash scripts/screenshot.sh $(OUT)
