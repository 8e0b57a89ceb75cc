# haw_icc.llm: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help env build sandbox-up sandbox-down demo test unit lint sanity integration molecule bench

help:
	@echo "make demo          start the local ICC sandbox and deploy a real LLM for a student"
	@echo "make test          everything: env, sandbox, unit, integration, molecule, lint, sanity"
	@echo "make sandbox-up    start the sandbox;  make sandbox-down  stop it"

env:
	@bash hack/env.sh
	@mkdir -p .cache/collections/ansible_collections/haw_icc
	@ln -sfn ../../../.. .cache/collections/ansible_collections/haw_icc/llm

build:
	@bash tests/cluster/build.sh

sandbox-up: env
	@bash tests/cluster/sandbox.sh up

sandbox-down:
	@bash tests/cluster/sandbox.sh down

demo: sandbox-up
	@bash hack/demo.sh

test: env build
	@bash hack/tools.sh
	@bash hack/test.sh

bench: env build
	@bash hack/bench.sh
