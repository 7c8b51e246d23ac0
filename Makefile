# faceprint: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: install demo test bench eval-lfw docs clean train-env

# faceprint with every extra, as any pip user installs it; requirements.txt pins the versions the
# published figures were measured with.
$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.txt -e ".[all]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m faceprint.cli.demo --out out/demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/speed.py --images $(DATA)/lfw-view1/images --limit 200

eval-lfw: install
	$(VENV)/bin/faceprint eval lfw --images $(DATA)/lfw-view1/images --pairs $(DATA)/lfw-view1/pairsDevTest.txt --out out/lfw-devtest

# The documentation site (mkdocs.yml, docs/) into out/site/, with the pinned tools of
# requirements-docs.txt in a virtual environment of their own; --strict: a warning is an error.
DOCS_VENV ?= .venv-docs
$(DOCS_VENV)/.installed: requirements-docs.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet -r requirements-docs.txt
	touch $@

docs: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict
	@echo "open out/site/index.html"

# The training environment of scripts/train_expression.py and scripts/train_age_gender.py: torch (CPU
# build, exact pin in requirements-train.txt) and faceprint itself; never part of faceprint's install.
TRAIN_VENV ?= .venv-train
$(TRAIN_VENV)/.installed: requirements-train.txt requirements.txt pyproject.toml
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet -c requirements.txt -r requirements-train.txt -e .
	touch $@

train-env: $(TRAIN_VENV)/.installed

clean:
	rm -rf out .pytest_cache
