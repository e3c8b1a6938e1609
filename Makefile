# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

.PHONY: demo test model bench loadtest screenshots system-deps clean-venv coco-features coco-train

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.app-installed
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# Debian packages: the emoji font (emoji world) and Chromium (browser tests), only where missing.
system-deps:
	@missing=""; \
	[ -f $(EMOJI_FONT) ] || missing="$$missing fonts-noto-color-emoji"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get install -y -q $$missing >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; }; \
	fi

demo: $(VENV)/.app-installed
	@if [ -f app.py ]; then $(PY) app.py $(if $(SHARE),--share); else echo "The web app (app.py) is not built yet: use 'python -m captioner caption IMAGE'."; fi

# axe-core, the accessibility checker the browser tests run on the page (npm, MPL-2.0).
AXE := $(VENV)/axe-core/axe.min.js
$(AXE): | $(VENV)/bin/python
	mkdir -p $(VENV)/axe-core
	cd $(VENV)/axe-core && npm pack --silent axe-core@4.14.1 >/dev/null && \
	  tar xzf axe-core-4.14.1.tgz package/axe.min.js && mv package/axe.min.js . && rm -rf package axe-core-4.14.1.tgz

test: $(VENV)/.dev-installed system-deps $(AXE)
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)

# --- the default model, benchmarks -------------------------------------------------------------
model: $(VENV)/.dev-installed system-deps
	$(PY) scripts/make_model.py

# Every figure of `python -m captioner bench`, and the web page's own (live camera).
bench: $(VENV)/.dev-installed
	$(PY) -m captioner.web.bench --json --markdown docs/benchmarks.md

# --- MS-COCO 2014 (for users who have it on disk; InceptionV3 as in the seed tutorial) ----------
COCO ?= data/coco
# 30000 is the seed tutorial's subset; COCO_LIMIT=0 trains on every caption.
COCO_LIMIT ?= 30000
COCO_ARGS = --captions $(COCO)/annotations/captions_train2014.json --images $(COCO)/train2014 \
	--limit-captions $(COCO_LIMIT)

coco-features: $(VENV)/.dev-installed
	$(PY) -m captioner features $(COCO_ARGS) --encoder inception_v3 --cache data/features

coco-train: coco-features
	$(PY) -m captioner train $(COCO_ARGS) --encoder inception_v3 --cache data/features \
	  --out runs/coco --epochs 20 --batch-size 64 --vocab-size 5000

loadtest: $(VENV)/.dev-installed
	$(PY) benchmarks/loadtest.py --clients 32 --requests 10

screenshots: $(VENV)/.dev-installed system-deps
	$(PY) scripts/screenshots.py
