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
(The plan's memory fit and live settings are used by the action plugin llm_plan directly, and the
container problems by llm_status_info.)
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._text import plain as _plain


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


def vllm_memory(cfg):
    return _engine.vllm_memory_limit(_plain(cfg))


def engine_tgi_env(_unused=None):
    return _engine.tgi_env()


def engine_pod_config(cfg):
    return _engine.pod_config(_plain(cfg))


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
            "engine_pod_config": engine_pod_config,
            "engine_tgi_env": engine_tgi_env,
            "vllm_memory": vllm_memory,
        }
