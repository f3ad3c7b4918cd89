# Kefu — everyday commands. `make run` and `make test` set everything up.
SHELL := /bin/bash
VENV := .venv
RASA := $(VENV)/bin/rasa
ENV := . scripts/env.sh &&

.PHONY: run test shell train validate bench setup system-deps clean help load-data sync-catalogue

help:
	@echo "make run       start action server, Rasa server and web chat"
	@echo "make test      run the whole test suite"
	@echo "make shell     chat in the terminal"
	@echo "make train     (re)train when data/domain/config changed"
	@echo "make validate  rasa data validate --fail-on-warnings"
	@echo "make bench     print NLU, latency, throughput, memory figures"
	@echo "make load-data FILE=x.json  upsert customers/products/orders (docs/data-format.md)"
	@echo "make sync-catalogue         regenerate data/lookups/product.yml from the catalogue"

setup:
	@scripts/bootstrap.sh

system-deps:
	@scripts/system_deps.sh

train: setup
	@scripts/train_if_needed.sh

run: setup train
	@scripts/run.sh

shell: setup train
	@scripts/shell.sh

validate: setup
	@$(ENV) $(RASA) data validate --fail-on-warnings

test: setup system-deps train
	@scripts/test.sh

bench: setup system-deps train
	@$(ENV) $(VENV)/bin/python bench/bench.py

load-data: setup
	@test -n "$(FILE)" || { echo "usage: make load-data FILE=path.json"; exit 2; }
	@$(ENV) $(VENV)/bin/python -m actions.backends.loader "$(FILE)"

sync-catalogue: setup
	@$(ENV) $(VENV)/bin/python -m actions.backends.loader --sync-catalogue

# keeps var/*.db (the shop's data and conversations)
clean:
	rm -rf models/*.tar.gz models/.kefu-* var/spacy results .pytest_cache
