# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text format (``/metrics`` of vLLM and TGI) parsed into a small dict for llm_health."""

from __future__ import annotations

import math
import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')

# (our key, candidate metric names in order of preference). vLLM renamed the KV-cache gauge from
# vllm:gpu_cache_usage_perc (V0) to vllm:kv_cache_usage_perc (V1); both are read.
GAUGES = [
    ("requests_running", ("vllm:num_requests_running", "tgi_batch_current_size")),
    ("requests_waiting", ("vllm:num_requests_waiting", "tgi_queue_size")),
    ("kv_cache_usage", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
    ("prompt_tokens_total", ("vllm:prompt_tokens_total",)),
    ("generation_tokens_total", ("vllm:generation_tokens_total",)),
    ("requests_total", ("tgi_request_count", "vllm:request_success_total")),
    ("requests_succeeded_total", ("tgi_request_success", "vllm:request_success_total")),
    ("preemptions_total", ("vllm:num_preemptions_total",)),
]
# Histograms whose _sum/_count give a mean.
HISTOGRAMS = [
    ("time_to_first_token_mean_s", ("vllm:time_to_first_token_seconds",)),
    ("e2e_request_latency_mean_s", ("vllm:e2e_request_latency_seconds", "tgi_request_duration")),
    ("time_per_output_token_mean_s", ("vllm:time_per_output_token_seconds", "tgi_request_mean_time_per_token_duration")),
    ("generated_tokens_mean", ("tgi_request_generated_tokens",)),
]


def parse_prometheus(text):
    """{metric name: [(labels dict, value float), ...]} of a Prometheus text exposition."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, _braces, labels, value = match.group(1), match.group(2), match.group(3), match.group(4)
        try:
            number = float(value)
        except ValueError:
            continue
        label_dict = dict((k, v.replace('\\"', '"').replace("\\\\", "\\")) for k, v in _LABEL.findall(labels or ""))
        out.setdefault(name, []).append((label_dict, number))
    return out


def _total(samples, name):
    values = [v for _l, v in samples.get(name, []) if not math.isnan(v)]
    return sum(values) if values else None


def summarize(samples):
    """Engine-independent figures from parsed samples, plus the engine's own names (``raw``)."""
    engine = "unknown"
    if any(n.startswith("vllm:") for n in samples):
        engine = "vllm"
    elif any(n.startswith("tgi_") for n in samples):
        engine = "tgi"
    out = dict(engine=engine)
    for key, names in GAUGES:
        for name in names:
            value = _total(samples, name)
            if value is not None:
                out[key] = value
                out[key + "_metric"] = name
                break
    for key, names in HISTOGRAMS:
        for name in names:
            total, count = _total(samples, name + "_sum"), _total(samples, name + "_count")
            if total is not None and count:
                out[key] = total / count
                break
    out["raw"] = dict((name, _total(samples, name)) for name in sorted(samples)
                      if name.startswith(("vllm:", "tgi_")) and not name.endswith("_bucket"))
    return out
