#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_exec
short_description: Run a command in a container of a pod of one ICC namespace
version_added: 0.2.0
description:
  - Runs O(command) in O(container) of O(pod) through the API server (C(pods/exec), what C(kubectl exec) uses)
    and returns its output and exit code.
  - Used by the test_gpu playbook for nvidia-smi, the CUDA environment and C(/dev/shm). It reads nothing else
    and changes nothing it knows of, so it reports C(changed=false); it runs in check mode too.
  - A refused exec (HTTP 401 or 403) fails with what to do instead, without a traceback.
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
  pod:
    description: The pod.
    type: str
    required: true
  container:
    description: The container (by default the pod's first).
    type: str
  command:
    description: The program and its arguments, run without a shell (use C([sh, -c, script]) for one).
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds the command may take.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: nvidia-smi in the engine pod
  haw_icc.llm.pod_exec:
    namespace: w123456-default
    pod: vllm-5d9c7b6f4-x2k8q
    container: vllm
    command: [nvidia-smi, -L]
  register: smi
"""

RETURN = r"""
stdout:
  description: The command's standard output.
  returned: success
  type: str
stdout_lines:
  description: RV(stdout) as lines.
  returned: success
  type: list
  elements: str
stderr:
  description: The command's standard error (or the API server's message when it did not start).
  returned: success
  type: str
rc:
  description: The exit code; -1 when the command did not start (not found in the container).
  returned: success
  type: int
"""

from ansible_collections.haw_icc.llm.plugins.module_utils import _exec
from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def run(module):
    p = module.params
    kube = module.client()
    out, err, code = _exec.run(kube, p["namespace"] or kube.namespace, p["pod"], p["command"], p["container"],
                               p["timeout"])
    return dict(changed=False, stdout=out, stdout_lines=out.splitlines(), stderr=err,
                rc=-1 if code is None else code)


def main():
    spec = connection_spec(
        namespace=dict(type="str"),
        pod=dict(type="str", required=True),
        container=dict(type="str"),
        command=dict(type="list", elements="str", required=True),
        timeout=dict(type="int", default=60),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
