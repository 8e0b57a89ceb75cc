#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_logs_info
short_description: Logs of the engine and WebUI containers of one ICC namespace, with an analysis
version_added: 0.2.0
description:
  - For every pod labelled C(app.kubernetes.io/part-of=haw-icc-llm) whose component is in
    O(components), reads the last O(lines) lines of each container (of the previous, crashed
    container with O(previous=true)).
  - Analyses each log with the Events of its pod, restarts, state, the last termination reason and
    exit code, OOMKilled, CUDA and NCCL error lines, out-of-memory and kill lines, probe failures and
    the scheduler's message of a pod that is not scheduled.
  - A container that never started has no log, and one that never restarted has no previous log;
    both are reported instead of read.
  - Read-only, it uses only the namespace's own rights.
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
  components:
    description: The components whose containers are read.
    type: list
    elements: str
    choices: [engine, webui]
    default: [engine, webui]
  lines:
    description: Lines read per container (at least 1).
    type: int
    default: 200
  show:
    description: Lines of each log in RV(lines) (0 shows only the analysis).
    type: int
    default: 30
  previous:
    description: Read the log of the previous (crashed) container.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Analyse the engine's last crash
  haw_icc.llm.llm_logs_info:
    namespace: w123456-default
    components: [engine]
    previous: true
  register: logs
"""

RETURN = r"""
report:
  description: One analysis per container (pod, container, component, state, restarts, last_termination,
    oom_killed, cuda_errors, nccl_errors, oom_lines, probe_failures, events, tail, ...).
  returned: success
  type: list
  elements: dict
lines:
  description: The analyses as lines for the terminal.
  returned: success
  type: list
  elements: str
logs:
  description: The logs read, each with C(pod), C(container), C(file) (a file name for it) and C(text).
  returned: success
  type: list
  elements: dict
"""

import json

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils import _logs
from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def run(module):
    from kubernetes.client.rest import ApiException

    p = module.params
    if p["lines"] < 1:
        raise InputError("logs_lines", p["lines"], "not a number of lines", "a whole number of at least 1")
    if p["show"] < 0:
        raise InputError("logs_show", p["show"], "not a number of lines", "a whole number of 0 or more")
    kube = module.client()
    ns = p["namespace"] or kube.namespace
    base = "/api/v1/namespaces/%s" % quote(ns, safe="")
    try:
        pods = json.loads(kube.get_raw(base + "/pods", {"labelSelector": "app.kubernetes.io/part-of=haw-icc-llm"}))["items"]
        events = json.loads(kube.get_raw(base + "/events", {"fieldSelector": "involvedObject.kind=Pod"}))["items"]
    except IccError as exc:
        module.fail_json(msg=namespace_read_failure(ns, p["kubeconfig"], p["context"], exc))
    pods = [x for x in pods if not x["metadata"].get("deletionTimestamp")]
    report, logs = [], []
    for target in _logs.targets(pods, p["components"]):
        text = None
        if _logs.readable(target, p["previous"]):
            query = {"container": target["container"], "tailLines": str(p["lines"])}
            if p["previous"]:
                query["previous"] = "true"
            try:
                raw = kube.get_raw("%s/pods/%s/log" % (base, quote(target["pod"], safe="")), query, accept="*/*")
            except IccError as exc:
                module.fail_json(msg=namespace_read_failure(ns, p["kubeconfig"], p["context"], exc))
            except ApiException as exc:
                # The container (re)started or went between the list and this read.
                module.warn("The log of %s/%s could not be read: %s" % (target["pod"], target["container"], exc.reason))
                report.append(_logs.analyse(target, None, events, p["previous"], p["show"]))
                continue
            text = raw.decode("utf-8", "replace")
            logs.append({"pod": target["pod"], "container": target["container"],
                         "file": _logs.file_name(target, p["previous"]), "text": text})
        report.append(_logs.analyse(target, text, events, p["previous"], p["show"]))
    return dict(changed=False, report=report, lines=_logs.lines(ns, report, p["previous"], p["components"]), logs=logs)


def main():
    spec = connection_spec(
        namespace=dict(type="str"),
        components=dict(type="list", elements="str", choices=list(_logs.COMPONENTS), default=list(_logs.COMPONENTS)),
        lines=dict(type="int", default=200),
        show=dict(type="int", default=30),
        previous=dict(type="bool", default=False),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
