# imapstream: make demo (a real backup of a throwaway Dovecot), make test, make install.
PYTHON ?= python3
VENV ?= .venv
PREFIX ?= /usr/local
DESTDIR ?=
BIN := $(VENV)/bin
MANPAGES := $(wildcard man/*.1 man/*.7)

.PHONY: all test lint demo bench install clean dovecot

all: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Dovecot is a system package: install it when missing (root on Debian), and stop the
# system instance the package starts, which would only hold ports 143 and 993.
dovecot:
	@command -v dovecot >/dev/null && command -v doveadm >/dev/null || { \
	  echo "installing dovecot-imapd with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd openssl && \
	  { $$SUDO service dovecot stop >/dev/null 2>&1 || true; }; }

test: all dovecot
	$(BIN)/python -m pytest -q

lint: all
	$(BIN)/ruff check imapstream tests
	@for page in $(MANPAGES); do groff -mdoc -ww -z $$page || exit 1; done

demo: all dovecot
	$(BIN)/python tests/demo.py backup

bench: all dovecot
	$(BIN)/python bench/run.py

install:
	$(PYTHON) -m pip install $(if $(DESTDIR),--root='$(DESTDIR)') --prefix='$(PREFIX)' .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
