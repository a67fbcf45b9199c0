# rswsgi: build, run the Flask example, run the end-to-end tests.
#   make setup   install Debian packages, the Flask virtualenv and the test user (root)
#   make build   cargo build --release --workspace
#   make run     serve examples/flask/wsgi.py on http://127.0.0.1:$(PORT)/
#   make test    build, then every test (unit + end-to-end against real httpd)
#   make bench   the benchmark of bench/ (ARGS=--quick for the short one); never part of make test

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

.PHONY: all setup build run test bench clean

all: build

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --release --workspace

run: setup build
	bash scripts/run-example.sh

test: setup build
	RSWSGI_TEST_VENV=$(VENV) $(CARGO) test --release --workspace

bench: setup build
	bash bench/run.sh --no-build $(ARGS)

clean:
	$(CARGO) clean
