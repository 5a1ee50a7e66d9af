# dgnn_lab: the two commands of the README's quick start are `make lab` and `make test`.
# Both create .venv in the checkout when it is missing and are quick when everything is already installed.
#
#   make lab                 set up, then open JupyterLab on notebooks/00_welcome.ipynb
#   make test                set up with the test tools, then run ruff and the whole test suite (notebooks too)
#   make demo                set up, then a terminal demo (real distributed training where available)
#   make doctor              check the environment
#   make bench               run the benchmarks (minutes; by hand)
#
# Torch is installed first and only when .venv has none, so pip never swaps it for another build:
#   make lab TORCH=torch==2.13.0                                  (default)
#   make lab TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cpu     CPU build elsewhere
#   make lab TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126   a CUDA build
# To change the torch build later: `make clean-venv`, then one of the above.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=
BIN := $(VENV)/bin

.PHONY: lab test demo doctor lint bench clean-venv git-filter

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.torch-installed: | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || { \
	  echo "Installing $(TORCH) into $(VENV)$(if $(TORCH_INDEX), from $(TORCH_INDEX))..."; \
	  $(BIN)/python -m pip install $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); }
	@touch $@

$(VENV)/.lab-installed: pyproject.toml $(VENV)/.torch-installed
	@echo "Installing dgnn_lab and its dependencies into $(VENV) (the first time takes a few minutes)..."
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.torch-installed
	@echo "Installing dgnn_lab with its test tools into $(VENV) (the first time takes a few minutes)..."
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@ $(VENV)/.lab-installed

# Notebooks run and saved in place stay clean for git: .gitattributes names the nbstripout filter, configured
# here in this checkout's .git/config (never globally) with the keys JupyterLab adds on save. Not `required`, so
# git keeps working if .venv is removed. Outside a git checkout (a tarball, Colab's copy) it does nothing.
NBSTRIPOUT = "$(abspath $(BIN))/python" -m nbstripout --keep-id
NBSTRIPOUT_KEYS = metadata.language_info.codemirror_mode metadata.language_info.file_extension \
  metadata.language_info.mimetype metadata.language_info.nbconvert_exporter metadata.language_info.pygments_lexer \
  metadata.language_info.version cell.metadata.trusted metadata.toc metadata.varInspector
git-filter:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '$(NBSTRIPOUT)' && \
	  git config filter.nbstripout.smudge cat && \
	  git config filter.nbstripout.extrakeys '$(NBSTRIPOUT_KEYS)' && \
	  git config diff.ipynb.textconv '$(NBSTRIPOUT) -t'; fi

lab: $(VENV)/.lab-installed git-filter
	$(BIN)/dgnn-lab lab

test: $(VENV)/.test-installed git-filter
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra --durations=15 $(PYTEST_ARGS)

demo: $(VENV)/.lab-installed
	$(BIN)/dgnn-lab demo

doctor: $(VENV)/.lab-installed
	$(BIN)/dgnn-lab doctor

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

bench: $(VENV)/.test-installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
