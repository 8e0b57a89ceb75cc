# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine registry: one object per LLM engine, in the manner of community.docker's ``Engine``.

Each object knows what the plan asks of an engine: its role's variable names, the settings a
workflow may change and the role variable each one maps to, its V100 rules (``check``), the parser
of its live Deployment, whether it takes an API key, and what its pod needs (command line, env,
port, cache path, health path, memory). The plan (``_plan``, ``_planner``) and the one engine core
(``_manifests`` rendered by the action plugin ``llm_engine``, which both engine roles call) ask the
registry instead of writing ``if engine == 'vllm'``.

Pure Python: the rules themselves stay in ``_engine`` (one source of truth per rule); this file
only says which of them belongs to which engine.
"""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _live, _llamacpp, _memory

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


# The figures read from an engine's /metrics (llm_health, gpu_monitor), and how each is read: a gauge
# as it is, a counter as a rate between two samples, a histogram as the mean of its _sum / _count.
METRIC_KINDS = {
    "requests_running": "gauge", "requests_waiting": "gauge", "kv_cache_usage": "gauge",  # (fraction 0..1)
    "prompt_tokens": "counter", "generation_tokens": "counter", "requests_total": "counter",
    "requests_succeeded": "counter", "preemptions": "counter",
    "time_to_first_token": "histogram", "e2e_request_latency": "histogram", "time_per_output_token": "histogram",
    "inter_token_latency": "histogram", "generated_tokens": "histogram",
}


class Engine(object):
    """An LLM engine the collection can deploy. Subclasses fill in the class attributes."""

    name = None            # the value of icc_engine and of the app.kubernetes.io/name label
    display = None         # the name people know it by, in messages
    container_port = 8000  # the port the program listens on (its ``--port``)
    cache_path = None      # where the model cache PVC is mounted
    health_path = "/health"  # the probes' path
    # setting -> role variable suffix (the role variable is prefix + suffix); None: the role has none.
    setting_vars = {}
    # setting -> further role variables that carry the same value (a refusal of them names the user's variable).
    setting_aliases = {}
    # Role variable suffix (None: the engine has none) and default of the GPU memory fraction.
    memory_fraction = (None, 0.9)
    api_key = False        # the engine checks an API key of its own (vllm_api_key / _secret)
    api_key_env = None     # the environment variable it reads that key from
    # Role variables that are not part of the engine configuration the rules check.
    not_config = ("hf_token", "api_key", "state", "purge", "wait", "settings", "cache_storage_class")
    # Its /metrics: what a figure is called there (candidates in order of preference), by METRIC_KINDS.
    metric_prefix = None
    metrics = {}

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

    # The quantization methods of the engine and the compute capability each needs (None: the engine
    # takes no quantization setting); the Hub facts' checkpoint check reads it.
    quant_min_cc = None
    # Whether the server refuses a context above the model's max_position_embeddings (vLLM 0.8.5:
    # "User-specified max_model_len ... is greater than the derived max_model_len"); TGI 2.4.1 and
    # llama.cpp start with it.
    refuses_long_context = False

    def check(self, cfg, facts=None):
        """The engine rules of a role configuration; ``facts``: the Hub's facts of the model."""
        return _engine.check(self.name, cfg, facts)

    def specific(self, llm):
        """The engine-specific part of the role configuration, from the plan's settings."""
        raise NotImplementedError

    def args(self, cfg):
        """The program's command line of a checked role configuration."""
        raise NotImplementedError

    def env(self, cfg):
        """The engine's own environment items (the cache, the NCCL settings, its V100 switches)."""
        return _engine.nccl_env(bool(cfg.get("nccl_fallback")))

    def memory(self, cfg):
        """The container's memory request and limit."""
        return cfg.get("memory")

    def memory_fit(self, llm, cfg, facts=None):
        """The plan's memory estimate (``_memory.memory_fit``) of the settings ``llm`` and the role
        configuration ``cfg`` (with the Hub's ``facts`` of the model, when read); advice names the
        icc_* variables."""
        return _memory.memory_fit(str(llm["model"]), str(llm["gpu_type"]), int(llm["gpu_count"]),
                                  str(llm["quantization"] or ""), str(cfg.get("dtype") or ""),
                                  int(llm["max_model_len"] or 0) or 4096, float(llm["memory_fraction"]), "icc_",
                                  facts=facts)

    def live(self, deployment):
        """The settings of a live Deployment of this engine, in the plan's keys."""
        cur = _live.live_settings(deployment)
        if cur is None:
            return None
        cur["max_len"] = cur.get(self.setting_vars["max_model_len"])
        cur["api_key_secret"] = cur["secret_refs"].get(self.api_key_env, "") if self.api_key_env else ""
        return cur


class Vllm(Engine):
    name = "vllm"
    setting_vars = {"quantization": "quantization", "max_model_len": "max_model_len", "max_input_tokens": None}
    setting_aliases = {"model": ("served_model_name",)}
    display = "vLLM"
    cache_path = "/root/.cache/huggingface"
    memory_fraction = ("gpu_memory_utilization", 0.9)
    quant_min_cc = _engine.VLLM_QUANT_MIN_CC
    refuses_long_context = True
    api_key = True
    api_key_env = "VLLM_API_KEY"  # vLLM's own variable for --api-key
    metric_prefix = "vllm:"
    metrics = {
        "requests_running": ("vllm:num_requests_running",), "requests_waiting": ("vllm:num_requests_waiting",),
        # vLLM V1 renamed vllm:gpu_cache_usage_perc (V0) to vllm:kv_cache_usage_perc; both are read.
        "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        "prompt_tokens": ("vllm:prompt_tokens_total",), "generation_tokens": ("vllm:generation_tokens_total",),
        "requests_total": ("vllm:request_success_total",), "requests_succeeded": ("vllm:request_success_total",),
        "preemptions": ("vllm:num_preemptions_total",),
        "time_to_first_token": ("vllm:time_to_first_token_seconds",),
        "e2e_request_latency": ("vllm:e2e_request_latency_seconds",),
        "time_per_output_token": ("vllm:time_per_output_token_seconds",),
        "inter_token_latency": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    }

    def specific(self, llm):
        return {"served_model_name": llm["model"], "quantization": llm["quantization"],
                "max_model_len": int(llm["max_model_len"])}

    def args(self, cfg):
        return _engine.vllm_args(cfg)

    def env(self, cfg):
        return ([{"name": "VLLM_USE_V1", "value": "1" if cfg.get("use_v1_engine") else "0"},
                 {"name": "HF_HOME", "value": self.cache_path},
                 {"name": "HF_HUB_CACHE", "value": self.cache_path + "/hub"},
                 {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"}]
                + Engine.env(self, cfg))

    def memory(self, cfg):
        return _engine.vllm_memory_limit(cfg)


class Tgi(Engine):
    name = "tgi"
    setting_vars = {"quantization": "quantize", "max_model_len": "max_total_tokens",
                    "max_input_tokens": "max_input_tokens"}
    display = "TGI"
    cache_path = "/data"
    memory_fraction = ("cuda_memory_fraction", 0.85)
    quant_min_cc = _engine.TGI_QUANT_MIN_CC
    metric_prefix = "tgi_"
    metrics = {
        "requests_running": ("tgi_batch_current_size",), "requests_waiting": ("tgi_queue_size",),
        "prompt_tokens": ("tgi_request_input_length_sum",), "generation_tokens": ("tgi_request_generated_tokens_sum",),
        "requests_total": ("tgi_request_count",), "requests_succeeded": ("tgi_request_success",),
        "e2e_request_latency": ("tgi_request_duration",),
        "time_per_output_token": ("tgi_request_mean_time_per_token_duration",),
        "inter_token_latency": ("tgi_request_mean_time_per_token_duration",),
        "generated_tokens": ("tgi_request_generated_tokens",),
    }

    def specific(self, llm):
        return {"quantize": llm["quantization"], "max_total_tokens": int(llm["max_model_len"]),
                "max_input_tokens": int(llm["max_input_tokens"])}

    def args(self, cfg):
        return _engine.tgi_args(cfg)

    def env(self, cfg):
        return ([{"name": "HF_HOME", "value": self.cache_path},
                 {"name": "HUGGINGFACE_HUB_CACHE", "value": self.cache_path},
                 {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"}]
                + Engine.env(self, cfg) + _engine.tgi_env())


class Llamacpp(Engine):
    """llama.cpp's ``llama-server`` with a GGUF model (its rules, argv and env: ``_llamacpp``)."""

    name = "llamacpp"
    display = "llama.cpp"
    container_port = _llamacpp.PORT
    cache_path = _llamacpp.CACHE_PATH
    # The context (-c) is shared by the parallel slots; the GGUF type is part of the model.
    setting_vars = {"quantization": None, "max_model_len": "ctx_size", "max_input_tokens": None, "nccl_fallback": None}
    setting_aliases = {"model": ("served_model_name",)}
    api_key = True
    api_key_env = _llamacpp.API_KEY_ENV
    # llama.cpp allocates what the weights and the context need, no fraction of the GPU: the fit
    # counts 95 % of it as usable (the CUDA context and compute buffers take the rest).
    memory_fraction = (None, 0.95)
    # llama-server b11312 (--metrics): no KV-cache gauge, no request counter and no histograms.
    metric_prefix = "llamacpp:"
    metrics = {
        "requests_running": ("llamacpp:requests_processing",), "requests_waiting": ("llamacpp:requests_deferred",),
        "prompt_tokens": ("llamacpp:prompt_tokens_total",), "generation_tokens": ("llamacpp:tokens_predicted_total",),
    }

    def check(self, cfg, facts=None):
        return _llamacpp.check(cfg).as_dict()  # llama.cpp splits by layers: no heads rule

    def specific(self, llm):
        return {"served_model_name": llm["model"], "ctx_size": int(llm["max_model_len"])}

    def args(self, cfg):
        return _llamacpp.args(cfg)

    def env(self, cfg):
        return _llamacpp.env(cfg)  # no NCCL: llama.cpp splits over one node's GPUs itself

    def memory_fit(self, llm, cfg, facts=None):
        return _llamacpp.memory_fit(dict(cfg, model=llm["model"]), float(llm["memory_fraction"]), "icc_", facts)

    def live(self, deployment):
        cur = Engine.live(self, deployment)
        if cur is None:
            return None
        cur["model"] = cur["settings"].get("model") or cur["model"]  # with --hf-file: the repository alone
        return cur


ENGINES = dict((e.name, e) for e in (Vllm(), Tgi(), Llamacpp()))


def metric_names(figure):
    """The /metrics names of ``figure`` (a key of METRIC_KINDS) over every engine, in the order of the
    registry (an engine's /metrics has only its own)."""
    out = []
    for engine in ENGINES.values():
        out += [n for n in engine.metrics.get(figure, ()) if n not in out]
    return tuple(out)


def metric_engine(names_):
    """The engine whose metric prefix the metric names ``names_`` carry, or None."""
    for engine in ENGINES.values():
        if any(n.startswith(engine.metric_prefix) for n in names_):
            return engine
    return None


def api_key_ref(pod_spec):
    """``(Secret name, key)`` of the API key the first container of a pod spec (or a Deployment's pod
    template spec) reads through any engine's key variable; ``("", "api-key")`` without one."""
    container = ((pod_spec or {}).get("containers") or [{}])[0]
    return _live.api_key_ref(container, set(e.api_key_env for e in ENGINES.values() if e.api_key_env))


def names():
    """The engine names, the default (vllm) first."""
    return list(ENGINES)


def get(name):
    """The engine called ``name``, or None."""
    return ENGINES.get(name)
