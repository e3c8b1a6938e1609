# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

.PHONY: demo test model bench loadtest system-deps clean-venv

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.app-installed
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# Debian packages: the emoji font (scene world) and Chromium (browser tests), only where missing.
system-deps:
	@missing=""; \
	[ -f $(EMOJI_FONT) ] || missing="$$missing fonts-noto-color-emoji"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get install -y -q $$missing >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; }; \
	fi

demo: $(VENV)/.app-installed
	@if [ -f app.py ]; then $(PY) app.py; else echo "The web app (app.py) is not built yet: use 'python -m captioner caption IMAGE'."; fi

test: $(VENV)/.dev-installed system-deps
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
