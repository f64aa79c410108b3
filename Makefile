# Kiyeovo Desktop. README.md's two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := run

# tauri-driver (for the end-to-end tests) is installed here, outside the clone.
TOOLS ?= $(HOME)/.cache/kiyeovo/tools
export PATH := $(TOOLS)/bin:$(PATH)
CARGO ?= cargo

.PHONY: fuzz run demo deps test-deps ui-deps ui build lint test test-rust test-ui test-e2e bindings-check package bench soak footprint clean

## Install system packages (if missing), build the UI and the app, open the window against a
## local bootstrap node.
run: deps build
	scripts/run.sh $(PROFILES)

## One-machine demo: a local bootstrap node and three profiles side by side.
demo: deps build
	scripts/run.sh alice bob carol

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh test

ui-deps:
	cd ui && npm ci --no-audit --no-fund

ui: ui-deps
	npm --prefix ui run build

build: ui
	$(CARGO) build --locked --workspace --bins

lint: ui-deps
	$(CARGO) fmt --all --check
	npm --prefix ui run typecheck
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

## Every test: lint, Rust unit + integration (real keyring, real nodes), UI, end-to-end window.
test: test-deps ui lint test-rust bindings-check test-ui test-e2e
	@echo "make test: all suites passed"

test-rust:
	scripts/with-keyring.sh $(CARGO) test --locked --workspace

# ts-rs regenerates ui/src/bindings during `cargo test`; a difference means the checked-in UI
# types no longer match the Rust ones.
bindings-check: test-rust
	@if [ -n "$$(git status --porcelain -- ui/src/bindings)" ]; then \
	  git status --porcelain -- ui/src/bindings; git --no-pager diff -- ui/src/bindings; \
	  echo "ui/src/bindings is out of date: run 'make test-rust' and commit the result"; exit 1; fi

test-ui: ui-deps
	npm --prefix ui test

$(TOOLS)/bin/tauri-driver:
	$(CARGO) install tauri-driver --version '^2' --locked --root $(TOOLS)

## Churn soak: 10 members, 30 % offline at any time, membership changes among 500 messages
## (tests/soak.rs; sizes from SOAK_MEMBERS, SOAK_MESSAGES, SOAK_OFFLINE_PERCENT, SOAK_SEED).
soak: test-deps
	scripts/with-keyring.sh $(CARGO) test --locked -p kiyeovo-tests --test soak -- --ignored --nocapture

test-e2e: build $(TOOLS)/bin/tauri-driver
	scripts/with-keyring.sh /usr/bin/python3 tests/e2e/status_e2e.py

FUZZ_RUNS ?= 1000000
FUZZ_SECONDS ?= 900
$(TOOLS)/bin/cargo-fuzz:
	$(CARGO) install cargo-fuzz --locked --root $(TOOLS)

## Fuzz every network decoder: FUZZ_RUNS executions each (default 1 M), at most FUZZ_SECONDS each
## (stable toolchain, via RUSTC_BOOTSTRAP).
fuzz: $(TOOLS)/bin/cargo-fuzz
	cd fuzz && for t in record_key_parse record_validate contact_card pairwise_envelope group_control group_envelope group_info backup_file; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) || exit 1; done

## Loopback benchmark (10 nodes, latency, catch-up, memory) and the criterion micro-benchmarks.
bench: test-deps
	scripts/with-keyring.sh $(CARGO) run --locked --release -p kiyeovo-bench
	$(CARGO) bench --locked -p kiyeovo-core

## Memory of the release app under Xvfb: one idle window, closed to the tray, opened again
## (scripts/footprint.py; figures in README, "Footprint").
footprint: test-deps ui
	$(CARGO) build --locked --release -p kiyeovo-desktop -p kiyeovo-tests --bins
	scripts/with-keyring.sh /usr/bin/python3 scripts/footprint.py

## Installers into <target dir>/release/bundle: .deb and .rpm by default; BUNDLES=deb,rpm,appimage
## where linuxdeploy can be downloaded (it comes from GitHub, unreachable on the offline CI box).
BUNDLES ?= deb,rpm
package: deps ui-deps
	ui/node_modules/.bin/tauri build --bundles $(BUNDLES)
	scripts/check-deb.sh

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules test-output
