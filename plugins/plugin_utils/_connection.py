# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: the Kubernetes connection of an action plugin that talks to the API itself
(no module process), with the options, ``module_defaults`` (group ``haw_icc.llm.icc``) and
``K8S_AUTH_*`` environment variables that the collection's modules take."""

from __future__ import annotations

import os

from ansible_collections.haw_icc.llm.plugins.module_utils._args import CONNECTION_ARG_SPEC
# Imported here, at the top, on purpose: the strategy loads the action plugin classes in the
# controller's main process, so the kubernetes client is imported once there and every worker
# process forked for a task inherits it (a lazy import cost each task ~0.2 CPU-s). _client itself
# tolerates a missing kubernetes package and reports it when a client is built.
from ansible_collections.haw_icc.llm.plugins.module_utils import _client

OPTIONS = frozenset(list(CONNECTION_ARG_SPEC) + ["verify_ssl", "ssl_ca_cert"])


def task_args(action):
    """The task's arguments with its ``module_defaults`` (ansible-core 2.19 merges them into the
    arguments before the action runs; older lines leave that to the action)."""
    task = action._task
    args = dict(task.args)
    try:  # ansible-core < 2.19
        from ansible.executor.module_common import get_action_args_with_defaults
    except ImportError:
        return args
    merged = get_action_args_with_defaults(task.resolved_action, args, task.module_defaults, action._templar,
                                           action_groups=task._parent._play._action_groups)
    # There a default such as "{{ icc_context | default(omit) }}" stays omit's placeholder string.
    return dict((k, v) for k, v in merged.items() if not (isinstance(v, str) and v.startswith("__omit_place_holder__")))


def connection(args):
    """The connection options of ``args`` with their ``K8S_AUTH_*`` fallbacks."""
    conn = {}
    for key, spec in CONNECTION_ARG_SPEC.items():
        value = args.get(key)
        for alias in spec.get("aliases") or ():
            value = args.get(alias, value)
        if value is None and spec.get("fallback"):
            for env in spec["fallback"][1]:
                if os.environ.get(env):
                    value = os.environ[env]
                    break
        if value is None:
            value = spec.get("default")
        if value is not None:
            conn[key] = value
    if isinstance(conn.get("kubeconfig"), str):
        conn["kubeconfig"] = os.path.expanduser(conn["kubeconfig"])
    conn["request_timeout"] = int(conn.get("request_timeout") or 20)
    if isinstance(conn.get("validate_certs"), str):
        conn["validate_certs"] = conn["validate_certs"].lower() in ("1", "true", "yes", "on")
    return conn


def client(args):
    return _client.build_client(**connection(args))
