#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_status
short_description: Wait for a Deployment rollout and say why it cannot finish
version_added: 0.1.0
description:
  - Like C(kubectl rollout status), in one task. Polls the Deployment and its pods until the rollout is
    available, fails, or O(timeout) seconds passed.
  - Fails fast, without waiting for the timeout, when waiting cannot help. The ReplicaSet cannot create
    the pod (quota or LimitRange, condition C(ReplicaFailure)); the progress deadline passed; a container
    cannot start (a missing Secret key, a bad image name, an image that cannot be pulled); or the scheduler
    cannot place a pod for a reason that waiting cannot change (more GPUs than any ICC node has, a request
    no node's allocatable meets when the credentials may read nodes, or every node ruled out by the pod's
    node affinity or by a taint it does not tolerate).
  - A pod that is C(Unschedulable) for a reason that can go away by itself (GPUs still held by a
    terminating pod, a node tainted C(node.kubernetes.io/unreachable) for a moment) is waited for up to
    O(unschedulable_grace) seconds; the module fails only if it lasts longer. The result says which pods
    had to wait, for how long and why (RV(unschedulable_waits)).
  - An API server that stops answering is retried for O(api_grace) seconds, then the module fails with
    a clear message (VPN, server address) instead of a traceback.
  - The webui role uses it; the engine roles wait with the same rules inside M(haw_icc.llm.llm_engine).
author:
  - haw_icc.llm contributors (@haw-icc)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
  - haw_icc.llm.attributes.INFO_MODULE
options:
  namespace:
    description: Namespace of the Deployment. Defaults to the namespace of the kubeconfig context.
    type: str
  name:
    description: Name of the Deployment.
    type: str
    required: true
  selector:
    description: Label selector of the Deployment's pods, for example C(app.kubernetes.io/instance=vllm).
    type: str
    required: true
  display_name:
    description: What the Deployment is, for the failure message (for example C(vLLM)). Defaults to O(name).
    type: str
  timeout:
    description: Seconds to wait for the rollout to become available.
    type: int
    default: 600
  poll:
    description: Seconds between two reads of the Deployment and its pods.
    type: float
    default: 2
  api_grace:
    description: Seconds in a row the API server may be unreachable before the module gives up.
    type: float
    default: 30
  unschedulable_grace:
    description:
      - Seconds a pod may stay C(Unschedulable) for a reason that can change by itself before the rollout
        fails. The default covers a pod that gives back its GPUs within its 30 s termination grace period
        and a node that is briefly unreachable (the node lifecycle controller's 50 s grace and its 5 s
        monitor period).
    type: float
    default: 120
  checksum:
    description:
      - The C(haw-icc.de/config-checksum) annotation of the pod template this run applied.
      - When set, the module fails once the rollout is available if the Deployment carries another one by
        then, because another run (two deploys into one namespace at the same time) changed it while this
        one waited, so that this run does not report settings that are not the ones running.
    type: str
"""

EXAMPLES = r"""
- name: Wait until the vLLM server is available (fails fast on quota, scheduling or image errors)
  haw_icc.llm.rollout_status:
    namespace: wabc123-default
    name: vllm
    selector: app.kubernetes.io/name=vllm,app.kubernetes.io/instance=vllm
    display_name: vLLM
    timeout: 2700
"""

RETURN = r"""
state:
  description: C(available), or C(failed) / C(progressing) in the result of a failed task.
  returned: always
  type: str
  sample: available
reason:
  description: Why the rollout is in this state, for people.
  returned: always
  type: str
  sample: 1 of 1 pods available
pods:
  description: The live pods of the Deployment.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "vllm-6d9f7c7b9-x2x4q", "node": "gpu-v100-2", "phase": "Running", "ready": true, "restarts": 0, "terminating": false}]
elapsed:
  description: Seconds waited.
  returned: always
  type: float
  sample: 4.1
unschedulable_waits:
  description:
    - The pods that the scheduler could not place at first, with the seconds this module saw them waiting,
      the scheduler's last message and whether they were scheduled in the end.
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "vllm-6d9f7c7b9-x2x4q", "seconds": 12.1, "scheduled": true,
            "message": "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, ..."}]
timed_out:
  description: Whether the module gave up because O(timeout) passed.
  returned: always
  type: bool
  sample: false
"""

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def run(module):
    from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import wait_deployment

    p = module.params
    for key in ("timeout", "poll", "api_grace", "unschedulable_grace"):
        if p[key] <= 0:
            raise InputError(key, p[key], "must be more than 0 seconds", "for example %s" % {"timeout": 600, "unschedulable_grace": 120}.get(key, 2))
    kube = module.client()
    namespace = p["namespace"] or kube.namespace or "default"
    result, failure = wait_deployment(kube, namespace, p["name"], p["selector"], p["display_name"] or p["name"],
                                      p["timeout"], poll=p["poll"], api_grace=p["api_grace"],
                                      unschedulable_grace=p["unschedulable_grace"], checksum=p["checksum"])
    if failure:
        module.fail_json(msg=failure, **result)
    return result


def main():
    spec = connection_spec(
        namespace=dict(type="str"),
        name=dict(type="str", required=True),
        selector=dict(type="str", required=True),
        display_name=dict(type="str"),
        timeout=dict(type="int", default=600),
        poll=dict(type="float", default=2),
        api_grace=dict(type="float", default=30),
        unschedulable_grace=dict(type="float", default=120),
        checksum=dict(type="str", no_log=False),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
