# imapstream: make demo (a real backup of a throwaway Dovecot), make test, make install.
PYTHON ?= python3
VENV ?= .venv
PREFIX ?= /usr/local
DESTDIR ?=
BIN := $(VENV)/bin
MANPAGES := $(wildcard man/*.1 man/*.7)

.PHONY: all test lint demo demo-server bench bench-accounts mutants install check-install clean \
    dovecot test-servers

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
SYSTEM_TOOLS := dovecot doveadm openssl jq bzcat xzcat groff man mutt script pipx parallel ssh
SYSTEM_PACKAGES := dovecot-imapd openssl jq bzip2 xz-utils groff man-db python3-pip mutt bsdutils \
    pipx parallel openssh-server openssh-client
dovecot:
	@for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	[ -x /usr/lib/dovecot/imap ] || [ -x /usr/libexec/dovecot/imap ] || missing=1; \
	[ -x /usr/sbin/sshd ] || missing=1; \
	[ -z "$$missing" ] || { \
	  echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) && \
	  { $$SUDO service dovecot stop >/dev/null 2>&1 || true; }; }

# Cyrus IMAP and Courier-IMAP conflict with dovecot-imapd: their Debian packages are
# downloaded and unpacked, not installed (tests/debs.py; /var/tmp/imapstream-debs as
# root).  Without apt or a network the tests that need them skip, except with CI=true.
test-servers: all
	@$(BIN)/python tests/debs.py || [ "$$CI" != true ]

test: all dovecot test-servers
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

# A demo Dovecot that keeps running until Ctrl-C; it prints the environment to paste.
demo-server: all dovecot
	@$(BIN)/python tests/demo.py --server

bench: all dovecot
	$(BIN)/python bench/run.py

# imapbackup --accounts over many generated accounts (ACCOUNTS=100 for fewer than 1000).
ACCOUNTS ?= 1000
bench-accounts: all dovecot
	$(BIN)/python bench/accounts.py --accounts $(ACCOUNTS)

# make install: the package and its dependencies into $(PREFIX)/lib/imapstream (pip
# --target, for the Python that $(PYTHON) names: Debian's, pyenv's, any 3.11+ with pip),
# each command as a script in $(PREFIX)/bin that runs that Python with that directory
# first on its path, imapbackup beside them, the man pages in $(PREFIX)/share/man.
# DESTDIR stages it all for a package: the scripts name $(PREFIX), never $(DESTDIR).
COMMANDS := imap-list imap-fetch mbox-ids mbox-merge imap-append imapbackup-accounts
LIBDIR = $(PREFIX)/lib/imapstream
install:
	@python=$$($(PYTHON) -c 'import sys; print(sys.executable)') || exit 1; \
	set -e; \
	rm -rf '$(DESTDIR)$(LIBDIR)'; \
	"$$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
	    --target '$(DESTDIR)$(LIBDIR)' .; \
	rm -rf '$(DESTDIR)$(LIBDIR)/bin' '$(DESTDIR)$(LIBDIR)/share'; \
	mkdir -p '$(DESTDIR)$(PREFIX)/bin' '$(DESTDIR)$(PREFIX)/share/man/man1' \
	    '$(DESTDIR)$(PREFIX)/share/man/man7'; \
	for command in $(COMMANDS); do \
	    printf '#!%s -I\nimport sys\nsys.path.insert(0, "%s")\nfrom imapstream.commands.%s import run\nrun()\n' \
	        "$$python" '$(LIBDIR)' "$$(echo $$command | tr - _)" >'$(DESTDIR)$(PREFIX)/bin/'$$command; \
	    chmod 755 '$(DESTDIR)$(PREFIX)/bin/'$$command; \
	done; \
	install -m 755 bin/imapbackup '$(DESTDIR)$(PREFIX)/bin/imapbackup'; \
	install -m 644 man/*.1 '$(DESTDIR)$(PREFIX)/share/man/man1'; \
	install -m 644 man/*.7 '$(DESTDIR)$(PREFIX)/share/man/man7'; \
	echo "installed imapbackup, $(COMMANDS) in $(DESTDIR)$(PREFIX)/bin for $$python"

# pipx install . as the README says, into a throwaway PIPX_HOME, and the commands it
# installed at work (tests/check_install.py; .ci/run runs it after make test).
check-install: all dovecot
	$(BIN)/python tests/check_install.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
