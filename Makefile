# rswsgi: build, run the Flask example, run the end-to-end tests.
#   make setup   install Debian packages, the Flask virtualenv and the test user (root)
#   make build   cargo build --release --workspace
#   make run     serve examples/flask/wsgi.py on http://127.0.0.1:$(PORT)/
#   make test    check formatting, the rust-version, clippy and rustdoc (warnings are errors), build, then every
#                test (unit + end-to-end against real httpd)
#   make check   only the formatting, clippy and rustdoc checks, and a build check with the
#                declared rust-version (scripts/msrv.sh)
#   make deb     the Debian package target/debian/libapache2-mod-rswsgi_<version>_<arch>.deb
#                (dpkg-buildpackage over debian/; its debug symbols in the -dbgsym .ddeb)
#   make bench   the benchmark of bench/ (ARGS=--quick for the short one); never part of make test
#   make fuzz    run each cargo-fuzz target of fuzz/ for FUZZ_TIME seconds (see fuzz/README.md);
#                never part of make test

SHELL := /bin/bash

ifeq ($(shell id -u),0)
VENV ?= /opt/rswsgi/venv
else
VENV ?= $(HOME)/.cache/rswsgi/venv
endif
PORT ?= 8000
HOST ?= 127.0.0.1
CARGO ?= cargo

export VENV PORT HOST

.PHONY: all setup build check run test deb bench fuzz fuzz-cmin clean

all: build

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --release --workspace

run: setup build
	bash scripts/run-example.sh

# Style and lint checks, before any test: a failure here is seen at once (rustdoc covers the
# private items too: the module's internals are documented for its maintainers).
check:
	$(CARGO) fmt --all -- --check
	bash scripts/msrv.sh
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --document-private-items

test: setup check build
	RSWSGI_TEST_REQUIRE=1 RSWSGI_TEST_VENV=$(VENV) $(CARGO) test --release --workspace --no-fail-fast

# dpkg-buildpackage writes the .deb, .ddeb, .buildinfo and .changes into target/debian/
# (not into the parent directory, as it would by default); -b: binary packages only.
DEB_DIR := target/debian
deb: setup
	mkdir -p $(DEB_DIR)
	CARGO=$(CARGO) dpkg-buildpackage -b --no-sign \
		--buildinfo-file=$(DEB_DIR)/rswsgi.buildinfo --buildinfo-option=-u$(DEB_DIR) \
		--changes-file=$(DEB_DIR)/rswsgi.changes --changes-option=-u$(DEB_DIR)
	@ls -l $(DEB_DIR)/*.deb

bench: setup build
	bash bench/run.sh --no-build $(ARGS)

# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets the stable toolchain use them.
# Each target works on fuzz/corpus-full/TARGET (not committed), seeded from the committed
# fuzz/corpus/TARGET; fuzz-cmin minimises the two (cargo fuzz cmin) into fuzz/corpus/TARGET,
# keeping its regress-* files (inputs that once failed) whatever coverage they add.
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= frame_decode frame_stream handshake directives environ response_head
FUZZ_FLAGS ?= -malloc_limit_mb=64 -print_final_stats=1
# Set cover over edges (not hit counts): a corpus of tens of files, not thousands.
FUZZ_CMIN_FLAGS ?= -set_cover_merge=1 -use_counters=0
FUZZ_CARGO = RUSTC_BOOTSTRAP=1 nice -n 19 $(CARGO) fuzz

fuzz:
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus-full/$$t; \
		$(FUZZ_CARGO) run -O $$t fuzz/corpus-full/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_TIME) $(FUZZ_FLAGS) $$(cat fuzz/options/$$t 2>/dev/null); \
	done

fuzz-cmin:
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus-full/$$t; \
		cp fuzz/corpus/$$t/* fuzz/corpus-full/$$t/ 2>/dev/null || true; \
		$(FUZZ_CARGO) cmin -O $$t fuzz/corpus-full/$$t -- $(FUZZ_CMIN_FLAGS) \
			$$(cat fuzz/options/$$t 2>/dev/null); \
		mkdir -p fuzz/corpus-keep && mv fuzz/corpus/$$t/regress-* fuzz/corpus-keep/ 2>/dev/null || true; \
		rm -rf fuzz/corpus/$$t && cp -r fuzz/corpus-full/$$t fuzz/corpus/$$t; \
		mv fuzz/corpus-keep/* fuzz/corpus/$$t/ 2>/dev/null || true; rmdir fuzz/corpus-keep; \
	done

clean:
	$(CARGO) clean
