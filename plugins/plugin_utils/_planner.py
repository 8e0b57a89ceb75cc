# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side (plugin_utils: it runs in the action plugins, never in a module process).
The reading half of the plan, shared by the action plugins ``llm_plan`` (one namespace) and
``llm_class_plan`` (all namespaces of a run): the live engine of a namespace, the role defaults,
and the resolved plan of one host (``_plan`` does the pure part). Runs on the controller."""

from __future__ import annotations

import json
import os

import yaml

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _plan
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _hub

ENGINE_SELECTOR = "app.kubernetes.io/part-of=haw-icc-llm,app.kubernetes.io/component=engine"
_ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")
_DEFAULTS = {}


def role_defaults(role):
    """The defaults/main.yml of a role (an engine of the registry, or a role name): the one source
    of the role's default values."""
    name = getattr(role, "name", role)
    if name not in _DEFAULTS:
        with open(os.path.join(_ROLES, name, "defaults", "main.yml")) as f:
            _DEFAULTS[name] = yaml.safe_load(f) or {}
    return _DEFAULTS[name]


def engine_deployment(kube, namespace):
    """The live engine Deployment of the namespace (the first by name, not being deleted), or None."""
    raw = kube.get_raw("/apis/apps/v1/namespaces/%s/deployments" % quote(namespace, safe=""),
                       {"labelSelector": ENGINE_SELECTOR})
    items = [d for d in json.loads(raw).get("items") or [] if not (d.get("metadata") or {}).get("deletionTimestamp")]
    items.sort(key=lambda d: d["metadata"]["name"])
    return items[0] if items else None


class NoEngine(Exception):
    pass


class BadArgs(Exception):
    pass


def task_args(args, plugin):
    """``(workflow, request, wait_timeout)`` of an ``llm_plan`` / ``llm_class_plan`` task."""
    workflow = args.get("workflow", "deploy")
    if workflow not in _plan.WORKFLOWS:
        raise BadArgs("%s: workflow=%r: use one of %s." % (plugin, workflow, ", ".join(_plan.WORKFLOWS)))
    request = args.get("request") or {}
    if not isinstance(request, dict):
        raise BadArgs("%s: request must be a dictionary of settings." % plugin)
    request, problems = _plan.request_of(workflow, request)
    if problems:
        raise BadArgs(" ".join(problems) + " Nothing was changed.")
    return workflow, request, args.get("wait_timeout")


def inputs(templar, task_vars):
    """The user's variables of the task's host (``_plan.Inputs``), each templated when read."""

    def lookup(name):
        if name not in task_vars:
            return _plan.MISSING
        return templar.template(task_vars[name])

    return _plan.Inputs(lookup, task_vars.get("inventory_hostname"))


def client(inputs):
    """The Kubernetes client of a host: its icc_kubeconfig and icc_context (default: $KUBECONFIG or
    ~/.kube/config and its current context)."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

    kubeconfig = inputs.get("icc_kubeconfig", None)
    return build_client(kubeconfig=os.path.expanduser(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig,
                        context=inputs.get("icc_context", None))


def plan_host(inputs, kube, workflow, request=None, wait_timeout=None):
    """Read the namespace's engine and the model's facts on the Hub (``_hub``, once per run), and
    resolve the plan of one host. Returns a dict with engine, llm, names, live, previous, cfg,
    change and facts. Raises NoEngine for scale / change_model without one."""
    ns = inputs.namespace
    live_dep = engine_deployment(kube, ns)
    live_engine = _engines.get(((live_dep or {}).get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name"))
    if workflow in _plan.LIVE_WORKFLOWS:
        if live_dep is None or live_engine is None:
            raise NoEngine("No engine Deployment (label app.kubernetes.io/component=engine) in %s: deploy first with "
                           "haw_icc.llm.deploy. Nothing was changed." % ns)
        engine, base = live_engine, "live"
    else:
        engine, base = _engines.get(inputs.get("icc_engine", "vllm")), "inventory"
    live = engine.live(live_dep) if live_dep is not None and live_engine is engine else None
    llm, names = _plan.resolve(inputs, engine, role_defaults(engine), base, request, live, wait_timeout)
    previous = None
    if live_engine is not None:
        previous, _names = _plan.resolve(inputs, live_engine, role_defaults(live_engine), "live", {},
                                         live_engine.live(live_dep), wait_timeout)
        previous["name"] = live_dep["metadata"]["name"]
    cfg = _plan.role_config(inputs, engine, role_defaults(engine), llm)
    return {"engine": engine, "llm": llm, "names": names, "live": live, "previous": previous, "cfg": cfg,
            "change": _plan.changes(llm, previous, cfg, (live or {}).get("settings")),
            "facts": _hub.model_facts(inputs, engine, llm["model"])}
