# faceprint: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: install demo test bench eval-lfw clean

# faceprint with every extra, as any pip user installs it; requirements.txt pins the versions the
# published figures were measured with.
$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.txt -e ".[all]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m faceprint.demo --out out/demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/speed.py --images $(DATA)/lfw-view1/images --limit 200

eval-lfw: install
	$(VENV)/bin/faceprint eval lfw --images $(DATA)/lfw-view1/images --pairs $(DATA)/lfw-view1/pairsDevTest.txt --out out/lfw-devtest

clean:
	rm -rf out .pytest_cache
