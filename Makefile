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

.PHONY: env demo test ui clean system

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

ui: env
	@mkdir -p $(RUNS)/prefect $(RUNS)/mlartifacts
	@echo "Prefect UI: http://127.0.0.1:4200"
	@echo "MLflow UI:  http://127.0.0.1:5000"
	PREFECT_HOME=$(abspath $(RUNS))/prefect $(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200 & \
	$(VENV)/bin/mlflow server --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(abspath $(RUNS))/mlflow.db \
		--default-artifact-root $(abspath $(RUNS))/mlartifacts & \
	wait

clean:
	rm -rf $(RUNS)
