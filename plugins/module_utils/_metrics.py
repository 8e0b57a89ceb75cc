# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text format (``/metrics`` of the engines) parsed into a small dict for llm_health."""

from __future__ import annotations

import math
import re

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')

# (our key, candidate metric names in order of preference): from the engine registry, where each
# engine names its own.
GAUGES = [(key, _engines.metric_names(figure)) for key, figure in (
    ("requests_running", "requests_running"), ("requests_waiting", "requests_waiting"),
    ("kv_cache_usage", "kv_cache_usage"), ("prompt_tokens_total", "prompt_tokens"),
    ("generation_tokens_total", "generation_tokens"), ("requests_total", "requests_total"),
    ("requests_succeeded_total", "requests_succeeded"), ("preemptions_total", "preemptions"))]
# Histograms whose _sum/_count give a mean.
HISTOGRAMS = [(key, _engines.metric_names(figure)) for key, figure in (
    ("time_to_first_token_mean_s", "time_to_first_token"), ("e2e_request_latency_mean_s", "e2e_request_latency"),
    ("time_per_output_token_mean_s", "time_per_output_token"), ("generated_tokens_mean", "generated_tokens"))]


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
    found = _engines.metric_engine(samples)
    out = dict(engine=found.name if found else "unknown")
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
                      if name.startswith(tuple(e.metric_prefix for e in _engines.ENGINES.values()))
                      and not name.endswith("_bucket"))
    return out
