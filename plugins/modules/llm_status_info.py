#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_status_info
short_description: What haw_icc.llm runs in one ICC namespace, as a report and a table
version_added: 0.2.0
description:
  - Reads the Deployments, Pods, Services, PersistentVolumeClaims labelled
    C(app.kubernetes.io/part-of=haw-icc-llm) and the EndpointSlices of the namespace, one list each.
  - For every Deployment, the engine (vllm, tgi, llamacpp, webui), the model (from the container's command
    line), the image, the GPUs (limit), the nodes, the ready pods, the restarts and the age; for every
    Service its ready endpoints; for every PVC its status, size and class.
  - Where the credentials may read nodes, checks that the nodes of the pods exist and are Ready, and
    names the pods on a node that is gone or NotReady under RV(report.problems). Without that right the
    check is skipped quietly.
  - Problems also name containers that cannot start (image pull errors, a missing Secret, crash loops).
  - Read-only.
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
  - haw_icc.llm.attributes.INFO_MODULE
options:
  namespace:
    description: The namespace, normally your C(w<id>-default). Defaults to the kubeconfig context's.
    type: str
"""

EXAMPLES = r"""
- name: Read what runs in the namespace
  haw_icc.llm.llm_status_info:
    namespace: w123456-default
  register: status

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ status.lines }}"
"""

RETURN = r"""
report:
  description: The status of the namespace.
  returned: success
  type: dict
  contains:
    namespace:
      description: The namespace.
      type: str
    workloads:
      description: One entry per Deployment (name, engine, component, model, image, gpus, nodes, ready, restarts, age).
      type: list
      elements: dict
    services:
      description: One entry per Service (name, ports, endpoints).
      type: list
      elements: dict
    pvcs:
      description: One entry per PVC (name, status, size, class, age).
      type: list
      elements: dict
    problems:
      description: What keeps a pod from serving, one sentence each.
      type: list
      elements: str
lines:
  description: The report as the lines of a table.
  returned: success
  type: list
  elements: str
"""

import json

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule
from ansible_collections.haw_icc.llm.plugins.module_utils._status import SELECTOR, lines, node_state, pod_nodes, report

PATHS = (
    ("deployments", "/apis/apps/v1/namespaces/%s/deployments", True),
    ("pods", "/api/v1/namespaces/%s/pods", True),
    ("services", "/api/v1/namespaces/%s/services", True),
    ("slices", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices", False),
    ("pvcs", "/api/v1/namespaces/%s/persistentvolumeclaims", True),
)


def _node_states(kube, names):
    from kubernetes.client.rest import ApiException

    out = {}
    for name in names:
        try:
            node = json.loads(kube.get_raw("/api/v1/nodes/%s" % quote(name, safe="")))
        except ApiException as exc:
            if exc.status == 404:
                out[name] = "gone"
            continue
        except IccError:
            # Students who may not read nodes (HTTP 403) get the table without this check.
            continue
        state = node_state(node)
        if state:
            out[name] = state
    return out


def run(module):
    kube = module.client()
    ns = module.params["namespace"] or kube.namespace
    found = {}
    try:
        for key, path, labelled in PATHS:
            raw = kube.get_raw(path % quote(ns, safe=""), {"labelSelector": SELECTOR} if labelled else None)
            found[key] = json.loads(raw).get("items") or []
    except IccError as exc:
        module.fail_json(msg=namespace_read_failure(ns, module.params["kubeconfig"], module.params["context"], exc))
    rep = report(ns, found["deployments"], found["pods"], found["services"], found["slices"], found["pvcs"],
                 _node_states(kube, pod_nodes(found["pods"])))
    return dict(changed=False, report=rep, lines=lines(rep))


def main():
    module = IccModule(argument_spec=connection_spec(namespace=dict(type="str")), supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
