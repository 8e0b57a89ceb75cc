# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine registry: one object per LLM engine, in the manner of community.docker's ``Engine``.

Each object knows what the plan asks of an engine: its role's variable names, the settings a
workflow may change and the role variable each one maps to, its V100 rules (``check``), the parser
of its live Deployment and whether it takes an API key. The plan (``_plan``, ``_planner``) asks the
registry instead of writing ``if engine == 'vllm'``; the roles still build their command lines
through the ``vllm_args`` / ``tgi_args`` filters (one engine role over the registry is still to do).

Pure Python: the rules themselves stay in ``_engine`` (one source of truth per rule); this file
only says which of them belongs to which engine.
"""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _live

# The settings a workflow resolves for every engine (the keys of the plan's ``llm``), and the
# inventory variable of the collection that sets each of them for any engine.
COMMON_VARS = {
    "model": "icc_model",
    "quantization": "icc_quantization",
    "max_model_len": "icc_max_total_tokens",
    "max_input_tokens": "icc_max_input_length",
    "gpu_type": "icc_gpu_type",
    "gpu_count": "icc_gpu_count",
    "shm_size": None,
    "namespace": "icc_namespace",
    "nccl_fallback": "icc_nccl_fallback",
}


class Engine(object):
    """An LLM engine the collection can deploy. Subclasses fill in the class attributes."""

    name = None            # the value of icc_engine and of the app.kubernetes.io/name label
    # setting -> role variable suffix (the role variable is prefix + suffix); None: the role has none.
    setting_vars = {}
    # setting -> further role variables that carry the same value (a refusal of them names the user's variable).
    setting_aliases = {}
    memory_fraction = ("", 0.9)  # role variable suffix and default of the GPU memory fraction
    api_key = False        # the engine checks an API key of its own (vllm_api_key / _secret)
    # Role variables that are not part of the engine configuration the rules check.
    not_config = ("hf_token", "api_key", "state", "purge", "wait", "cache_storage_class")

    @property
    def prefix(self):
        return self.name + "_"

    def var(self, setting):
        """The role variable of ``setting`` (``vllm_max_model_len``), or None."""
        suffix = self.setting_vars.get(setting, setting)
        return None if suffix is None else self.prefix + suffix

    def role_vars_of(self, setting):
        """Every role variable a refusal of ``setting`` may name."""
        first = self.var(setting)
        return ([first] if first else []) + [self.prefix + s for s in self.setting_aliases.get(setting, ())]

    def check(self, cfg):
        return _engine.check(self.name, cfg)

    def specific(self, llm):
        """The engine-specific part of the role configuration, from the plan's settings."""
        raise NotImplementedError

    def live(self, deployment):
        """The settings of a live Deployment of this engine, in the plan's keys."""
        cur = _live.live_settings(deployment)
        if cur is None:
            return None
        cur["max_len"] = cur.get(self.setting_vars["max_model_len"])
        return cur


class Vllm(Engine):
    name = "vllm"
    setting_vars = {"quantization": "quantization", "max_model_len": "max_model_len", "max_input_tokens": None}
    setting_aliases = {"model": ("served_model_name",)}
    memory_fraction = ("gpu_memory_utilization", 0.9)
    api_key = True

    def specific(self, llm):
        return {"served_model_name": llm["model"], "quantization": llm["quantization"],
                "max_model_len": int(llm["max_model_len"])}


class Tgi(Engine):
    name = "tgi"
    setting_vars = {"quantization": "quantize", "max_model_len": "max_total_tokens",
                    "max_input_tokens": "max_input_tokens"}
    memory_fraction = ("cuda_memory_fraction", 0.85)

    def specific(self, llm):
        return {"quantize": llm["quantization"], "max_total_tokens": int(llm["max_model_len"]),
                "max_input_tokens": int(llm["max_input_tokens"])}


ENGINES = dict((e.name, e) for e in (Vllm(), Tgi()))


def names():
    """The engine names, the default (vllm) first."""
    return list(ENGINES)


def get(name):
    """The engine called ``name``, or None."""
    return ENGINES.get(name)
