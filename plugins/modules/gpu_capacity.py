#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_capacity
short_description: Tell whether N GPUs of an ICC type can be scheduled for you now, and if not, why
version_added: 0.1.0
description:
  - Reads the GPU nodes, the GPU requests of every running or pending pod and the namespace's
    ResourceQuota, and answers whether a pod asking for O(count) GPUs of type O(gpu_type) would be
    scheduled now, the way the Kubernetes scheduler decides it.
  - All GPUs of one pod must be on one node, so the answer uses the largest free block on a single
    schedulable node (Ready, not cordoned, only taints that the request tolerates).
  - Works with namespace-only rights. When nodes or pods of other namespaces may not be listed, it
    returns RV(cluster_view=false), says why in RV(reason), and answers from the quota and the
    namespace's own pods instead of failing.
  - Fast on big clusters, one paginated list of nodes and one paginated list of non-terminated pods
    (field selector), no per-node queries. Pods are read in the Kubernetes protobuf encoding, which the
    API server produces several times faster than JSON, with JSON as the fallback.
  - Read-only; never changes anything.
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
  - haw_icc.llm.attributes.INFO_MODULE
options:
  gpu_type:
    description:
      - The ICC GPU type, which is the key of the taint of its nodes, for example V(gpu-tesla-v100).
      - Nodes of this type are found by that taint or by the NVIDIA GPU Feature Discovery product label.
      - The request is assumed to tolerate this taint (as the roles of this collection do).
      - If not set, every GPU node counts and every ICC GPU taint is assumed tolerated.
    type: str
    choices: [gpu-tesla-v100, gpu-tesla-v100s]
  count:
    description: Number of GPUs one pod asks for.
    type: int
    default: 1
  namespace:
    description:
      - Namespace whose ResourceQuota limits you, normally your C(w<id>-default).
      - Defaults to the namespace of the kubeconfig context.
    type: str
  resource_name:
    description: The extended resource name of the GPUs.
    type: str
    default: nvidia.com/gpu
  node_selector:
    description:
      - Only consider nodes with all these labels, like a pod's C(nodeSelector).
    type: dict
  release_selector:
    description:
      - Label selector of pods in O(namespace) that a C(Recreate) rollout deletes before the new pod is
        scheduled, for example the engine pod that a model change or a scale replaces.
      - Their GPUs count as free, on their node and in the quota, and RV(fits) and RV(reason) are judged
        that way. RV(release) tells what was counted.
    type: str
"""

EXAMPLES = r"""
- name: Can I get 2 V100 GPUs right now?
  haw_icc.llm.gpu_capacity:
    gpu_type: gpu-tesla-v100
    count: 2
  register: capacity

- name: Stop early with the reason
  ansible.builtin.assert:
    that: capacity.fits
    fail_msg: "{{ capacity.reason }}"

- name: Only the 32 GB V100S nodes, with an explicit kubeconfig
  haw_icc.llm.gpu_capacity:
    kubeconfig: ~/.kube/config
    namespace: wabc123-default
    node_selector:
      nvidia.com/gpu.product: Tesla-V100S-PCIE-32GB
"""

RETURN = r"""
fits:
  description:
    - Whether a pod asking for O(count) GPUs would be admitted by the quota and fit on one node now.
    - With RV(cluster_view=false) only the quota could be checked.
  returned: always
  type: bool
reason:
  description: Why it fits or not, in words.
  returned: always
  type: str
  sample: no single v100 node has 4 free GPUs; largest is 3 on gpu-v100-2
cluster_view:
  description: Whether nodes and pods of all namespaces could be read. If false, RV(fits) only reflects the quota.
  returned: always
  type: bool
cluster_view_notes:
  description: What could not be read.
  returned: always
  type: list
  elements: str
nodes:
  description: One entry per GPU node of the requested type (empty without cluster view).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
    gpu_type:
      description: ICC GPU type of the node (taint key), or null.
      type: str
    product:
      description: GPU product from the GPU Feature Discovery label.
      type: str
    memory_mib:
      description: Memory of one GPU in MiB from the GPU Feature Discovery label.
      type: int
    gpu_count_label:
      description: GPU count from the GPU Feature Discovery label.
      type: int
    capacity:
      description: GPUs the node has.
      type: int
    allocatable:
      description: GPUs the node offers to pods.
      type: int
    allocated:
      description: Sum of the GPU requests of the non-terminated pods bound to the node (null if pods cannot be read).
      type: int
    free:
      description: RV(nodes[].allocatable) minus RV(nodes[].allocated).
      type: int
    ready:
      description: Whether the node is Ready.
      type: bool
    cordoned:
      description: Whether the node is cordoned.
      type: bool
    schedulable:
      description: Ready, not cordoned, and no taint that the request does not tolerate.
      type: bool
    unschedulable_reasons:
      description: Why it is not schedulable.
      type: list
      elements: str
totals:
  description: Per GPU type, the number of nodes and the sums of capacity, allocatable, allocated, free and schedulable_free.
  returned: always
  type: dict
largest_free_block:
  description: The most free GPUs on one schedulable node (C(gpus)) and that node (C(node)).
  returned: always
  type: dict
  sample: {gpus: 3, node: gpu-v100-2}
quota:
  description:
    - The tightest ResourceQuota on C(requests.<resource_name>) in the namespace with C(name), C(resource),
      C(hard), C(used) and C(free); null if there is none or it cannot be read.
  returned: always
  type: dict
  sample: {name: icc-quota, resource: requests.nvidia.com/gpu, hard: 4, used: 1, free: 3}
quota_other:
  description: CPU and memory quota (C(hard) and C(used) as quantities) of the namespace.
  returned: always
  type: dict
namespace:
  description: The namespace whose quota was used.
  returned: always
  type: str
namespace_allocated:
  description: GPUs requested by the namespace's own non-terminated pods (null if they cannot be listed).
  returned: always
  type: int
namespace_pods_with_gpus:
  description: Number of the namespace's own non-terminated pods that request GPUs.
  returned: always
  type: int
gpu_pods:
  description: Number of non-terminated pods in the cluster that request GPUs (null without cluster view).
  returned: always
  type: int
requested:
  description: The request that was assessed (C(count), C(gpu_type), C(resource)).
  returned: always
  type: dict
release:
  description:
    - What O(release_selector) released - C(selector), C(gpus) (the GPU requests of its scheduled pods),
      C(node) (where they run) and C(pods).
  returned: when O(release_selector) and O(namespace) are set
  type: dict
  sample: {"selector": "app.kubernetes.io/component=engine", "gpus": 1, "node": "gpu-v100-2", "pods": 1}
"""

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import gather
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_TYPES, validate_dns_label
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def run(module):
    params = module.params
    if params["count"] < 1:
        raise InputError("count", params["count"], "a pod asks for at least one GPU", "a number from 1 to 4")
    kube = module.client()
    namespace = params["namespace"] or kube.namespace
    if namespace:
        validate_dns_label(namespace, "namespace")
    result = gather(kube, namespace, params["count"], params["gpu_type"], params["resource_name"],
                    params["node_selector"], params["release_selector"])
    result["changed"] = False
    return result


def main():
    spec = connection_spec(
        gpu_type=dict(type="str", choices=sorted(GPU_TYPES)),
        count=dict(type="int", default=1),
        namespace=dict(type="str"),
        resource_name=dict(type="str", default="nvidia.com/gpu"),
        node_selector=dict(type="dict"),
        release_selector=dict(type="str"),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
