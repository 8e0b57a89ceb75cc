#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_engine_info
short_description: The engine pods and Service of haw_icc.llm in one ICC namespace, and the pod to test
version_added: 0.2.0
description:
  - Reads the Pods and Services labelled C(app.kubernetes.io/part-of=haw-icc-llm) and
    C(app.kubernetes.io/component=engine) in the namespace (one list call each), optionally only those of one
    engine instance (the Deployment's name) or all but one.
  - Returns them, the newest Running pod that is not being deleted (the one C(test_gpu.yml) checks) and the
    engine Service.
  - When the namespace cannot be read with the credentials (HTTP 401, 403, 404), fails with one message that
    names the namespace, the kubeconfig and what to check, without a traceback.
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
  instance:
    description: Only the engine of this name (label C(app.kubernetes.io/instance)).
    type: str
  exclude_instance:
    description: All engines but the one of this name (label C(app.kubernetes.io/instance)).
    type: str
"""

EXAMPLES = r"""
- name: Find the engine pod and its Service
  haw_icc.llm.llm_engine_info:
    namespace: w123456-default
    exclude_instance: gpu-test
  register: engine

- name: Show the pod to test
  ansible.builtin.debug:
    msg: "{{ engine.pod.metadata.name | default('no running engine pod') }} behind {{ engine.service or 'no Service' }}"
"""

RETURN = r"""
pods:
  description: The engine pods, as the API returns them.
  returned: success
  type: list
  elements: dict
pod:
  description: The newest Running engine pod that is not being deleted; empty without one.
  returned: success
  type: dict
service:
  description: The name of the engine Service (the first by name); empty without one.
  returned: success
  type: str
"""

import json

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.module_utils._gpu_test import engine_target
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule

SELECTOR = "app.kubernetes.io/part-of=haw-icc-llm,app.kubernetes.io/component=engine"


def run(module):
    p = module.params
    kube = module.client()
    ns = p["namespace"] or kube.namespace
    selector = SELECTOR
    if p["instance"]:
        selector += ",app.kubernetes.io/instance=%s" % p["instance"]
    if p["exclude_instance"]:
        selector += ",app.kubernetes.io/instance!=%s" % p["exclude_instance"]
    found = {}
    try:
        for kind in ("pods", "services"):
            raw = kube.get_raw("/api/v1/namespaces/%s/%s" % (quote(ns, safe=""), kind), {"labelSelector": selector})
            found[kind] = json.loads(raw).get("items") or []
    except IccError as exc:
        module.fail_json(msg=namespace_read_failure(ns, p["kubeconfig"], p["context"], exc))
    pod, service = engine_target(found["pods"], found["services"])
    return dict(changed=False, pods=found["pods"], pod=pod, service=service)


def main():
    spec = connection_spec(namespace=dict(type="str"), instance=dict(type="str"), exclude_instance=dict(type="str"))
    module = IccModule(argument_spec=spec, supports_check_mode=True, mutually_exclusive=[("instance", "exclude_instance")])
    module.run(run)


if __name__ == "__main__":
    main()
