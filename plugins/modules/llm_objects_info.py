#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_objects_info
short_description: The objects haw_icc.llm created in one ICC namespace, and which of them a cleanup removes
version_added: 0.2.0
description:
  - Lists the Deployments, Jobs, bare Pods, Services, Ingresses, ConfigMaps, Secrets and
    PersistentVolumeClaims labelled C(app.kubernetes.io/part-of=haw-icc-llm), in the order a cleanup
    deletes them (workloads first, data last). Pods owned by a workload go with it and are not listed.
  - Model caches (PVCs) and the Secrets in O(keep_secrets) are kept unless O(purge).
  - Returns names only, never the data of a Secret.
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
  purge:
    description:
      - Also remove the PVCs (downloaded models, WebUI data) and the O(keep_secrets).
      - V(true) or V(false) as the user wrote it (C(-e purge=...)); anything else is refused naming C(purge).
    type: raw
    default: false
  keep_secrets:
    description: Names of the Secrets kept without O(purge), such as the Open WebUI secret key.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: What would a cleanup remove?
  haw_icc.llm.llm_objects_info:
    namespace: w123456-default
    keep_secrets: [webui-secret-key]
  register: found
"""

RETURN = r"""
remove:
  description: The objects a cleanup deletes, in order (api_version, kind, name, keep, terminating).
  returned: success
  type: list
  elements: dict
kept:
  description: The objects a cleanup keeps.
  returned: success
  type: list
  elements: dict
definitions:
  description: Minimal manifests of the objects to delete, for kubernetes.core.k8s state=absent.
  returned: success
  type: list
  elements: dict
remove_names:
  description: Kind/name of each object that goes, comma-separated (C(-) for none).
  returned: success
  type: str
kept_names:
  description: Kind/name of each object that stays, comma-separated (C(-) for none).
  returned: success
  type: str
line:
  description: One line naming what goes.
  returned: success
  type: str
"""

import json

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils import _cleanup
from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule

SELECTOR = "app.kubernetes.io/part-of=haw-icc-llm"


def run(module):
    p = module.params
    purge = _cleanup.flag(p["purge"])
    if purge is None:
        raise InputError("purge", p["purge"], "not true or false", "true or false (e.g. -e purge=false)")
    kube = module.client()
    ns = p["namespace"] or kube.namespace
    found = []
    try:
        for api_version, kind, path in _cleanup.KINDS:
            items = json.loads(kube.get_raw(path % quote(ns, safe=""), {"labelSelector": SELECTOR})).get("items") or []
            found.append((api_version, kind, items))
    except IccError as exc:
        module.fail_json(msg=namespace_read_failure(ns, p["kubeconfig"], p["context"], exc))
    result = _cleanup.plan(ns, found, purge, p["keep_secrets"])
    result.pop("namespace")
    result["changed"] = False
    return result


def main():
    spec = connection_spec(
        namespace=dict(type="str"),
        purge=dict(type="raw", default=False),
        keep_secrets=dict(type="list", elements="str", default=[], no_log=False),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
