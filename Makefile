# churn_nb: two commands for a new user.
#   make up    install (if needed), run the pipeline on the bundled sample (train → score → segment → recommend), start the MLflow UI, the REST API and the dashboard, print where everything is
#   make test  install (if needed), then every check, in CI's order
#   make docs  run the library notebooks and keep their outputs (the manual)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := notebooks/*.ipynb notebooks/*/*.ipynb scheduled/*.ipynb
LIBRARY = $$(find churn_nb -name "*.py" | sort)

.PHONY: install browser up down test check-clean check-export lint nbtest pytest smoke docs clean

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	@touch $(STAMP)

install: $(STAMP)

# the browser tests drive Debian's chromium (never a downloaded browser)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@$(CHROMIUM) --version

up: install
	-@$(BIN)/churn-nb doctor
	$(BIN)/churn-nb run pipeline -p train.feedback sample
	$(BIN)/churn-nb run feedback
	@$(BIN)/churn-nb ui --background
	@$(BIN)/churn-nb serve --background
	@$(BIN)/churn-nb dashboard --background
	@echo
	@echo "churn_nb is up (workspace: $$PWD)"
	@echo "  dashboard         http://127.0.0.1:8866   (overview, risk list, customer, what-if, model, voice of the customer)"
	@echo "  REST API          http://127.0.0.1:5055   (POST /predict /explain /recommend /feedback; docs at http://127.0.0.1:5055/docs)"
	@echo "  MLflow UI         http://127.0.0.1:5001   (runs, artifacts, the 'churn' model and its aliases)"
	@echo "  champion model    models:/churn@champion  (MLFLOW_TRACKING_URI=sqlite:///$$PWD/mlflow.db)"
	@echo "  training report   $$(ls -d $$PWD/reports/runs/*-train | tail -1)/train.html"
	@echo "  scoring report    $$(ls -d $$PWD/reports/runs/*-recommend | tail -1)/scoring_report.html"
	@echo "  customer store    sqlite:///$$PWD/churn_nb.db (python: churn_nb.run.store.latest_scores()), marts in $$PWD/marts/"
	@echo "  feedback          $$(ls -d $$PWD/reports/runs/*-feedback | tail -1)/feedback.html (store: churn_nb.run.store.feedback_analysis())"
	@echo "  schedule          $(BIN)/churn-nb schedule --crontab"
	@echo "  stop everything   make down"

down:
	@test -x $(BIN)/churn-nb && $(BIN)/churn-nb stop || true

test: install browser check-clean check-export lint nbtest pytest smoke
	@echo "make test: all checks passed"

# 1. notebooks must already be clean (nbdev_clean changes nothing)
check-clean:
	@before=$$(cat $(NOTEBOOKS) | sha1sum); $(BIN)/nbdev_clean; $(BIN)/nbdev_clean --fname scheduled; \
	after=$$(cat $(NOTEBOOKS) | sha1sum); \
	if [ "$$before" != "$$after" ]; then echo "FAIL: nbdev_clean changed notebooks; run nbdev_clean and commit the result"; git status --short -- notebooks scheduled; exit 1; fi
	@echo "ok: notebooks are clean"

# 2. churn_nb/ must be what the notebooks export
check-export:
	@before=$$(cat $(LIBRARY) | sha1sum); $(BIN)/nbdev_export; after=$$(cat $(LIBRARY) | sha1sum); \
	if [ "$$before" != "$$after" ]; then echo "FAIL: churn_nb/ differs from what notebooks/ export; run nbdev_export and commit"; git status --short -- churn_nb; exit 1; fi
	@echo "ok: churn_nb/ matches notebooks/"

# 3. style over notebooks, scheduled notebooks, tests and tools: ruff format at 120 columns (ruff.toml), no longer line,
#    no ;-chained statements; fix with `ruff format notebooks scheduled tests tools`, then nbdev_clean and nbdev_export
LINTED := notebooks scheduled tests tools
lint:
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check --select E501,E702,E703 $(LINTED)
	@echo "ok: code is formatted, lines within 120 columns, one statement per line"

# 4. the tests inside the notebooks, slow cells included
nbtest:
	$(BIN)/nbdev_test --flags slow --n_workers 2 --do_print

# 5. end-to-end, papermill, packaging and fault tests
pytest:
	$(BIN)/python -m pytest tests -ra

# 6. every scheduled notebook, run by papermill with small parameters, in a scratch workspace
smoke:
	@ws=$$(mktemp -d); echo "smoke workspace: $$ws"; CHURN_NB_HOME=$$ws $(BIN)/churn-nb smoke

# the manual: run every library notebook (as nbtest does, bench cells skipped) and keep its outputs in it, offline;
# then commit the notebooks, so a reader sees results without running anything (about 10 minutes on 2 cores)
docs: install
	$(BIN)/python tools/run_notebooks.py
	$(BIN)/nbdev_clean
	@echo "make docs: notebooks/ now hold their outputs; commit them"

clean:
	rm -rf build dist *.egg-info _proc
