"""The gpu_monitor role's inputs: meta/argument_specs.yml and defaults/main.yml say the same thing."""

from __future__ import annotations

import pathlib
import re

import yaml

from ansible_collections.haw_icc.llm.plugins.modules import gpu_monitor_sample

ROLE = pathlib.Path(__file__).resolve().parents[2] / "roles" / "gpu_monitor"


def load(rel):
    return yaml.safe_load((ROLE / rel).read_text())


def test_every_input_is_documented_with_the_default_it_has():
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    for name, spec in options.items():
        assert name.startswith("gpu_monitor_") and not name.startswith("gpu_monitor__")
        assert spec.get("description"), name
        if "default" in spec:
            assert spec["default"] == defaults[name], name


def test_role_choices_match_the_module():
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    doc = yaml.safe_load(gpu_monitor_sample.DOCUMENTATION)["options"]
    assert options["gpu_monitor_formats"]["choices"] == doc["formats"]["choices"]
    assert options["gpu_monitor_formats"]["default"] == doc["formats"]["default"]
    assert options["gpu_monitor_nvidia_smi"]["default"] == doc["nvidia_smi"]["default"]
    assert load("vars/main.yml")["gpu_monitor__selectors"]["any"] == doc["selector"]["default"]


def test_tasks_use_only_known_variables():
    known = set(load("defaults/main.yml")) | set(load("vars/main.yml")) | {
        "gpu_monitor_result", "gpu_monitor__load_job", "gpu_monitor__load", "gpu_monitor__files",
        "gpu_monitor__load_lines", "gpu_monitor__refusals", "gpu_monitor__engines", "gpu_monitor__engine", "gpu_monitor__key"}
    used = set(re.findall(r"\bgpu_monitor_[a-z_]+", (ROLE / "tasks" / "main.yml").read_text()))
    used.discard("gpu_monitor_sample")  # the module's name
    assert used <= known, used - known
