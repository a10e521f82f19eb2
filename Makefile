# Observability ETL Suite: developer entry points.
.PHONY: help venv test demo devstack-up devstack-down devstack-status lint ci

help:
	@echo "make test            run the test suite (creates .venv, starts the dev stack as needed)"
	@echo "make demo            the one-command demo (obs-etl demo)"
	@echo "make devstack-up     start Postgres 17 (+timescaledb, age, vector), S3 and Redis on loopback"
	@echo "make devstack-down   stop them"
	@echo "make lint            ruff on the tree, mypy on the engine"
	@echo "make ci              what CI runs (.ci/run)"

venv:
	@bash scripts/setup >/dev/null

test:
	bash scripts/test

demo: venv
	.venv/bin/obs-etl demo

devstack-up: venv
	OBS_PYTHON=.venv/bin/python bash scripts/devstack start

devstack-down:
	bash scripts/devstack stop

devstack-status:
	bash scripts/devstack status

lint: venv
	.venv/bin/ruff check .
	.venv/bin/mypy airflow_obs_provider/engine airflow_obs_provider/jobs

ci:
	bash .ci/run
