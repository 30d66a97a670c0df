# imapstream: make demo (a real backup of a throwaway Dovecot), make test, make install.
PYTHON ?= python3
VENV ?= .venv
PREFIX ?= /usr/local
DESTDIR ?=
BIN := $(VENV)/bin
MANPAGES := $(wildcard man/*.1 man/*.7)

.PHONY: all test lint demo bench mutants install clean dovecot

all: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml bin/imapbackup
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q imapstream
	touch $@

# Dovecot and the tools the tests use are system packages: install what is missing
# (root on Debian), and stop the system Dovecot the package starts, which would only
# hold ports 143 and 993.
SYSTEM_TOOLS := dovecot doveadm openssl jq bzcat xzcat groff mutt script
SYSTEM_PACKAGES := dovecot-imapd openssl jq bzip2 xz-utils groff mutt bsdutils
dovecot:
	@for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	[ -z "$$missing" ] || { \
	  echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) && \
	  { $$SUDO service dovecot stop >/dev/null 2>&1 || true; }; }

test: all dovecot
	$(BIN)/python -m pytest -q

lint: all
	$(BIN)/ruff check imapstream tests
	@for page in $(MANPAGES); do groff -mdoc -ww -z $$page || exit 1; done

# Curated one-line mutants of the modules behind imapstream(7)'s promises (tests/mutants.py):
# each applied, its tests run, the file restored; prints the score.
mutants: all dovecot
	$(BIN)/python tests/mutants.py

demo: all dovecot
	$(BIN)/python tests/demo.py backup

bench: all dovecot
	$(BIN)/python bench/run.py

install:
	$(PYTHON) -m pip install $(if $(DESTDIR),--root='$(DESTDIR)') --prefix='$(PREFIX)' .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
