# The README's two set-up commands are `make demo` and `make test`; both build the environment
# from nothing. torch is installed first from this machine's CPU wheel so that no later dependency
# pulls a CUDA build.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
RUNS    ?= runs

export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export ORT_DISABLE_TELEMETRY ?= 1

.PHONY: env demo test ui deploy clean system

env: $(STAMP) system

# System packages the tests use, installed from Debian's archive when we are root (each test skips
# cleanly without its package): a CJK font for OCR's rendered images, PostgreSQL for the backend test,
# headless Chromium for the Prefect UI check.
APT_PACKAGES := fonts-wqy-zenhei fontconfig postgresql chromium
system:
	@if [ "$$(id -u)" = 0 ] && ! { fc-list 2>/dev/null | grep -qi wqy && command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,dask,postgres]'
	$(PIP) check
	touch $(STAMP)

demo: env
	$(VENV)/bin/liandan run recipes/demo.yaml --serve data/sample/site

test: env
	$(PY) -m pytest -q

# Both UIs, a process worker per work pool, and the sample site the demo recipe crawls (so a data run
# triggered from the Prefect UI with its default parameters works); `make deploy` in a second terminal
# applies the deployments. The pools are made first, with their limits, so the two workers do not race to
# create them in Prefect's SQLite store. Each service runs in its own session, so Ctrl-C reaches it once,
# as a SIGTERM from the trap (Prefect's CLIs escalate a second signal to SIGKILL), workers first. A worker
# turns SIGTERM into a SIGINT to itself, which a background job of a non-interactive shell ignores, so
# workers start with SIGINT restored (env --default-signal, GNU coreutils ≥ 8.31).
PREFECT_PORT ?= 4200
MLFLOW_PORT  ?= 5000
PREFECT_API  := http://127.0.0.1:$(PREFECT_PORT)/api
ui: env
	@mkdir -p $(RUNS)/prefect $(RUNS)/mlartifacts
	@export PREFECT_HOME=$(abspath $(RUNS))/prefect PREFECT_API_URL=$(PREFECT_API) PREFECT_UI_API_URL=$(PREFECT_API) \
		MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false; \
	trap 'trap - INT TERM EXIT; kill $$workers 2>/dev/null; wait $$workers; kill $$pids 2>/dev/null; wait' INT TERM EXIT; \
	setsid $(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) & pids=$$!; \
	setsid $(VENV)/bin/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(abspath $(RUNS))/mlflow.db \
		--default-artifact-root $(abspath $(RUNS))/mlartifacts & pids="$$pids $$!"; \
	setsid $(VENV)/bin/liandan serve data/sample/site --port 8731 & pids="$$pids $$!"; \
	until $(PY) -c "import urllib.request as u; u.urlopen('$(PREFECT_API)/health')" 2>/dev/null; do sleep 1; done; \
	$(PY) -m deployments.deploy --pools-only; \
	setsid env --default-signal=INT $(VENV)/bin/prefect worker start --pool liandan-process --type process & workers=$$!; \
	setsid env --default-signal=INT $(VENV)/bin/prefect worker start --pool liandan-gpu --type process & workers="$$workers $$!"; \
	echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)   MLflow UI: http://127.0.0.1:$(MLFLOW_PORT)   then: make deploy"; \
	wait

# The nightly data, weekly training and full-pipeline deployments (deployments/deploy.py), their work
# pools and the data-completed trigger, with the recipe's sections as default parameters.
RECIPE ?= recipes/demo.yaml
deploy: env
	PREFECT_HOME=$(abspath $(RUNS))/prefect PREFECT_API_URL=$${PREFECT_API_URL:-$(PREFECT_API)} $(PY) -m deployments.deploy --recipe $(RECIPE)

clean:
	rm -rf $(RUNS)
