# Two entry points: `make run` (demo server) and `make test` (whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# torch is pinned to the CPU wheel (torch==2.13.0); compat mode keeps new packages importable.
	$(VENV)/bin/pip install --quiet -e '.[ml,test]' --config-settings editable_mode=compat
	touch $@

.PHONY: setup run test test-multiserver bench browser go nginx
setup: $(VENV)/.installed

# Browser tests drive Debian's chromium; Playwright never downloads a browser of its own.
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# tests/test_multi_server.py (marker multiserver) puts Debian's nginx in front of two servers.
nginx:
	@test -x /usr/sbin/nginx || (apt-get update && apt-get install -y nginx)

# tests/interop/ builds a verifier on Go's own sumdb code from Debian's packages (GOPATH
# mode, GO111MODULE=off): no module is ever downloaded.
go:
	@test -x /usr/bin/go && test -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog || \
		(apt-get update && apt-get install -y golang-go golang-golang-x-mod-dev)

run: setup
	$(VENV)/bin/stagegate demo
	$(VENV)/bin/stagegate serve

test: setup browser go
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(VENV)/bin/python -m pytest -n 2 --durations=25 -m "not multiserver"

# Several servers behind nginx with object storage and a remote worker (about 90 s):
# tests/test_multi_server.py. .ci/run runs it after `make test`.
test-multiserver: setup nginx
	$(VENV)/bin/python -m pytest -p no:randomly -m multiserver tests/test_multi_server.py

bench: setup
	$(VENV)/bin/python bench/api.py
