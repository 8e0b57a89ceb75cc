# haw_icc.llm: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help env build sandbox-up sandbox-down demo test unit lint sanity integration molecule bench bench-report

help:
	@echo "make demo          start the local ICC sandbox and deploy a real LLM for a student"
	@echo "make test          everything: env, sandbox, unit, integration, molecule, lint, sanity"
	@echo "make sandbox-up    start the sandbox;  make sandbox-down  stop it"
	@echo "make bench-report  run the benchmarks (about 16 min), write docs/benchmarks.md and docs/images/bench_*.png"

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
	@bash hack/sandbox-venv.sh vllm >/dev/null
	@bash hack/sandbox-venv.sh webui >/dev/null
	@bash hack/llama-server.sh >/dev/null
	@bash hack/venv-core221.sh >/dev/null
	@bash hack/test.sh

bench: bench-report

# The benchmarks (never part of make test): medians, baselines, ratios and targets into docs/.
# BENCH_ARGS=--quick for a short, labelled trial run (written to .cache/bench-report-quick).
bench-report: env build
	@python bench/report.py $(BENCH_ARGS)
