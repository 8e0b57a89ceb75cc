# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that expose the engine rules of module_utils/_engine.py to playbooks.

- ``engine_check(cfg, kind)``: check a role configuration (the role's variables without their prefix)
  with the rules the roles apply; returns ``ok``, ``errors`` (each naming the variable, the bad value
  and what to use instead), ``variables`` and ``warnings``.
- ``engine_defaults(kind)``: the pinned default image of vllm, tgi, llamacpp or webui.
- ``engine_api_key_secret(pod_spec)``: the Secret (``name``, ``key``) an engine pod reads its API key from.
(The roles themselves check and build their objects in their action plugins, llm_engine and
llm_webui; the plan's memory fit and live settings are used by llm_plan directly, and the container
problems by llm_status_info.)
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _engines, _llamacpp
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._text import plain as _plain


def engine_check(cfg, kind):
    try:
        if kind in _engines.ENGINES and kind not in _engine.CHECKS:  # an engine with rules of its own file
            return _engines.get(kind).check(dict(_plain(cfg) or {}))
        return _engine.check(kind, _plain(cfg))
    except InputError as exc:
        raise AnsibleFilterError(str(exc))


def engine_api_key_secret(pod_spec):
    """``{"name", "key"}`` of the Secret an engine pod spec (a pod's or a Deployment template's
    ``spec``) reads its API key from; name '' without one."""
    name, key = _engines.api_key_ref(_plain(pod_spec))
    return {"name": name, "key": key}


def engine_defaults(kind):
    images = {"vllm": _engine.VLLM_DEFAULT_IMAGE, "tgi": _engine.TGI_DEFAULT_IMAGE,
              "llamacpp": _llamacpp.DEFAULT_IMAGE, "webui": _engine.WEBUI_DEFAULT_IMAGE}
    if kind not in images:
        raise AnsibleFilterError("engine_defaults: unknown component %r (%s)" % (kind, ", ".join(images)))
    return {"image": images[kind]}


class FilterModule(object):
    def filters(self):
        return {
            "engine_api_key_secret": engine_api_key_secret,
            "engine_check": engine_check,
            "engine_defaults": engine_defaults,
        }
