# The two commands of the README, plus a few conveniences.
.PHONY: run test demo lint format fuzz audit

run:    ## Run the portal: web on http://127.0.0.1:8000, Celery worker and beat, in the foreground
	@./scripts/run.sh

test:   ## Install what the suite needs, lint, and run every test
	@./scripts/test.sh

fuzz:   ## Fuzz the API from its OpenAPI schema (schemathesis, live server); the suite runs fewer
	@REGUI_FUZZ_EXAMPLES=$${REGUI_FUZZ_EXAMPLES:-60} ./scripts/test.sh tests/api/test_fuzz.py

audit:  ## Check the pinned requirements for known vulnerabilities (needs PyPI's audit service)
	@.venv/bin/pip-audit -r requirements.txt --strict

demo:   ## Start a local registry with sample images and register it (run `make run` beside it)
	@./scripts/demo.sh

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	@.venv/bin/ruff check --fix . && .venv/bin/ruff format .
