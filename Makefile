# `make run` and `make test` each create .venv and install on first use (and again when
# pyproject.toml or a compiled source changes), so a fresh machine needs nothing but Python 3.11+
# (and the C compiler its packages build with).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench simulate clean chromium

# setup.py compiles these modules in place (typed by their .pxd files, if any): rebuilt when one
# changes
ENGINE_COMPILED := commands events money wallet exposure order book market user_risk engine
COMPILED := $(foreach m,$(ENGINE_COMPILED),engine/$(m).py) risk/rules.py risk/self_limits.py \
  gateway/order_json.py engine/codec.py persistence/fold.py gateway/fast_requests.py \
  gateway/connection.py gateway/session.py persistence/sequencer.py persistence/journal.py \
  gateway/ops.py gateway/metrics.py gateway/ws_picows.py
$(STAMP): pyproject.toml setup.py $(COMPILED) $(wildcard engine/*.pxd risk/*.pxd gateway/*.pxd \
  persistence/*.pxd)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,load]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/backlay serve --demo

# the browser tests need Debian's chromium; installed when missing and apt-get is usable,
# otherwise those tests skip with the reason
chromium:
	@sh scripts/ensure_chromium.sh

test: $(STAMP) chromium
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/engine.py

simulate: $(STAMP)
	$(BIN)/backlay simulate

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis build engine/*.c engine/*.so risk/*.c risk/*.so \
		gateway/*.c gateway/*.so persistence/*.c persistence/*.so
