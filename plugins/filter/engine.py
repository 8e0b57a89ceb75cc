# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that expose the engine rules of module_utils/_engine.py to the roles.

- ``engine_check(cfg, kind)``: check a role configuration (the role's variables without their prefix);
  returns ``ok``, ``errors`` (each naming the variable, the bad value and what to use instead),
  ``variables`` and ``warnings``.
- ``vllm_args(cfg)``, ``tgi_args(cfg)``: the engine command line of a checked configuration.
- ``engine_shm_size``, ``engine_node_affinity``, ``engine_toleration``, ``engine_resources``,
  ``engine_nccl_env``, ``engine_defaults``: manifest pieces.
- ``engine_memory_fit(model, gpu_type, gpu_count, quantization, dtype, max_model_len, fraction)``:
  the preflight's memory estimate (``verdict`` fits, tight, refuse or unknown, with ``message``).
- ``engine_live_settings(deployment)``: model, quantization, context length, GPUs and shm of a live
  engine Deployment (for rollbacks).
- ``engine_container_problems(pods)``: what keeps the pods' containers from running (a crash loop with
  the program's last error line, an image that cannot be pulled, a missing Secret), one sentence each.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _rollout
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError


def _plain(value):
    """Template results may be lazy Ansible containers; give the pure code plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def engine_check(cfg, kind):
    try:
        return _engine.check(kind, _plain(cfg))
    except InputError as exc:
        raise AnsibleFilterError(str(exc))


def vllm_args(cfg):
    return _engine.vllm_args(_plain(cfg))


def tgi_args(cfg):
    return _engine.tgi_args(_plain(cfg))


def engine_shm_size(cfg):
    return _engine.shm_size(_plain(cfg))


def engine_node_affinity(gpu_type):
    return _engine.node_affinity(str(gpu_type))


def engine_toleration(gpu_type):
    return _engine.gpu_toleration(str(gpu_type))


def engine_resources(count, cpu, memory):
    return _engine.gpu_resources(int(count), cpu, memory)


def engine_nccl_env(fallback=False):
    return _engine.nccl_env(bool(fallback))


def engine_defaults(kind):
    images = {"vllm": _engine.VLLM_DEFAULT_IMAGE, "tgi": _engine.TGI_DEFAULT_IMAGE,
              "webui": _engine.WEBUI_DEFAULT_IMAGE}
    if kind not in images:
        raise AnsibleFilterError("engine_defaults: unknown component %r (vllm, tgi, webui)" % kind)
    return {"image": images[kind]}


def engine_memory_fit(model, gpu_type, gpu_count=1, quantization="", dtype="", max_model_len=4096,
                      memory_fraction=0.9, variable_prefix="icc_"):
    return _engine.memory_fit(str(model), str(gpu_type), int(gpu_count), str(quantization or ""),
                              str(dtype or ""), int(max_model_len or 0) or 4096, float(memory_fraction),
                              str(variable_prefix))


def vllm_memory(cfg):
    return _engine.vllm_memory_limit(_plain(cfg))


def engine_tgi_env(_unused=None):
    return _engine.tgi_env()


def engine_pod_config(cfg):
    return _engine.pod_config(_plain(cfg))


def engine_live_settings(deployment):
    return _engine.live_settings(_plain(deployment))


def engine_container_problems(pods):
    return _rollout.container_problems(_plain(pods))


class FilterModule(object):
    def filters(self):
        return {
            "engine_check": engine_check,
            "vllm_args": vllm_args,
            "tgi_args": tgi_args,
            "engine_shm_size": engine_shm_size,
            "engine_node_affinity": engine_node_affinity,
            "engine_toleration": engine_toleration,
            "engine_resources": engine_resources,
            "engine_nccl_env": engine_nccl_env,
            "engine_defaults": engine_defaults,
            "engine_memory_fit": engine_memory_fit,
            "engine_live_settings": engine_live_settings,
            "engine_pod_config": engine_pod_config,
            "engine_tgi_env": engine_tgi_env,
            "vllm_memory": vllm_memory,
            "engine_container_problems": engine_container_problems,
        }
