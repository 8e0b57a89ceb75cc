#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_access
short_description: Open or close local port-forwards to the API and the WebUI of one ICC namespace
version_added: 0.2.0
description:
  - O(state=present) starts C(kubectl port-forward) in the background for the engine Service
    (label C(app.kubernetes.io/component=engine), port 8000, to the local O(api_port)) and the WebUI
    Service (C(component=webui), to the local O(webui_port)), waits until each listens, asks the API
    for its models and records PIDs and ports in C(<state_dir>/<namespace>.json) (mode 0600).
  - Running again while the recorded forwards still run and answer changes nothing; a forward whose pod
    was replaced (it lives on, but no connection through it works) is started again.
  - O(state=absent) stops exactly the recorded PIDs, and only while they still are those
    port-forwards, and removes the state file and the kubectl logs.
  - The forwards bind 127.0.0.1 only and use the namespace's own kubeconfig.
  - Runs where the playbook runs (the inventory's hosts are namespaces, reached with a local
    connection).
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
attributes:
  check_mode:
    support: full
    description: Reports what it would start or stop, and starts, stops and writes nothing.
  diff_mode:
    support: none
    description: Nothing to diff; the forwards are processes, not objects.
options:
  namespace:
    description: The namespace, normally your C(w<id>-default). Defaults to the kubeconfig context's.
    type: str
  state:
    description: Whether the forwards run.
    type: str
    choices: [present, absent]
    default: present
  api_port:
    description: Local port of the API (0 is any free port).
    type: int
    default: 8000
  webui_port:
    description: Local port of the WebUI (0 is any free port).
    type: int
    default: 3000
  webui:
    description: Also forward the WebUI when it is deployed.
    type: bool
    default: true
  state_dir:
    description: Where the state file and the kubectl logs go.
    type: path
    default: ~/.cache/haw_icc_llm/access
  start_timeout:
    description: Seconds to wait for a forward to listen.
    type: int
    default: 20
  kubectl:
    description: The kubectl program (a name on E(PATH) or a path).
    type: str
    default: kubectl
"""

EXAMPLES = r"""
- name: Open the API and the WebUI on 127.0.0.1:8000 and :3000
  haw_icc.llm.llm_access:
    namespace: w123456-default
  register: access

- name: Close them again
  haw_icc.llm.llm_access:
    namespace: w123456-default
    state: absent
"""

RETURN = r"""
forwards:
  description: The forwards that run (name, service, remote_port, local_port, path, pid, url, log).
  returned: state=present
  type: list
  elements: dict
wanted:
  description: The forwards this run wants (what check mode would start).
  returned: state=present
  type: list
  elements: dict
stopped:
  description: The forwards that were (or would be) stopped.
  returned: always
  type: list
  elements: dict
models:
  description: The model ids the API serves; null when it wants its API key.
  returned: state=present, not in check mode
  type: list
  elements: str
lines:
  description: The URLs for the terminal.
  returned: state=present
  type: list
  elements: str
"""

import json
import os
import shutil

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils import _access
from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def _answers(url, timeout=60):
    """Any HTTP answer (whatever its status) proves the forward reaches a pod."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _models(url):
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/models", timeout=30) as resp:
            return [m.get("id") for m in json.loads(resp.read()).get("data") or []]
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return None
        raise IccError("The API at %s answered HTTP %s to /models." % (url, exc.code))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IccError("The API at %s did not answer /models: %s." % (url, exc))


def _stop(module, forwards):
    if not module.check_mode:
        _access.stop(forwards)


def run(module):
    p = module.params
    for name in ("api_port", "webui_port"):
        if not 0 <= p[name] <= 65535:
            raise InputError("access_%s" % name, p[name], "not a local port", "a port from 0 to 65535 (0 = any free port)")
    kubeconfig, context = p["kubeconfig"], p["context"]
    kube = module.client()
    ns = p["namespace"] or kube.namespace
    path = _access.state_file(p["state_dir"], ns)
    recorded = (_access.read_state(path) or {}).get("forwards") or []
    alive = _access.running(recorded, _access.ps([f["pid"] for f in recorded if f.get("pid")]), ns)

    if p["state"] == "absent":
        _stop(module, alive)
        files = [x for x in [path] + [f.get("log") for f in recorded] if x and os.path.exists(x)]
        if not module.check_mode:
            for x in files:
                os.unlink(x)
        return dict(changed=bool(alive or files), stopped=alive)

    try:
        raw = kube.get_raw("/api/v1/namespaces/%s/services" % quote(ns, safe=""),
                           {"labelSelector": "app.kubernetes.io/part-of=haw-icc-llm"})
    except IccError as exc:
        module.fail_json(msg=namespace_read_failure(ns, kubeconfig, context, exc))
    want = _access.wanted(json.loads(raw).get("items") or [], p["api_port"], p["webui_port"], p["webui"])
    if not [w for w in want if w["name"] == "api"]:
        module.fail_json(msg="No engine Service (labels app.kubernetes.io/part-of=haw-icc-llm, app.kubernetes.io/component=engine) "
                             "in namespace %s. Deploy first (haw_icc.llm.deploy); haw_icc.llm.status shows what runs." % ns)
    answering = [f["pid"] for f in alive if _answers("http://127.0.0.1:%s%s" % (f["local_port"], f["path"]))]
    kept = _access.keep(want, alive, answering)
    stale = [f for f in alive if f not in kept]
    start = [w for w in want if w["name"] not in [k["name"] for k in kept]]
    result = dict(changed=bool(stale or start), wanted=want, stopped=stale)
    if module.check_mode:
        result.update(forwards=kept, lines=["Check mode: would forward %s in %s" % (", ".join(w["service"] for w in want), ns)])
        return result
    _stop(module, stale)
    kubectl = shutil.which(p["kubectl"])
    if start and not kubectl:
        module.fail_json(msg="kubectl not found (%s). Install it (https://kubernetes.io/docs/tasks/tools/) or set icc_kubectl "
                             "to its path." % p["kubectl"])
    os.makedirs(p["state_dir"], mode=0o700, exist_ok=True)
    new = []
    for w in start:
        if w["local_port"] and _access.port_in_use(w["local_port"]):
            # Another program (or another namespace's forward) holds it: any free port, said out loud.
            module.warn("local port %d (access_%s_port) is in use by another program; the %s is forwarded to a free "
                        "port instead, shown below." % (w["local_port"], w["name"], "API" if w["name"] == "api" else "WebUI"))
            w = dict(w, local_port=0)
        log = _access.log_file(p["state_dir"], ns, w["name"])
        argv = _access.kubectl_argv(kubectl, ns, w, kubeconfig if isinstance(kubeconfig, str) else None, context)
        try:
            pid, port = _access.start(argv, log, p["start_timeout"])
        except _access.StartError as exc:
            module.fail_json(msg=str(exc), stopped=stale)
        new.append(_access.record(w, pid, port, log))
    forwards = kept + new
    _access.write_state(path, {"namespace": ns, "kubeconfig": kubeconfig if isinstance(kubeconfig, str) else "",
                               "context": context or "", "forwards": forwards})
    api = [f for f in forwards if f["name"] == "api"][0]
    models = _models(api["url"])
    result.update(forwards=forwards, models=models, lines=_access.lines(ns, forwards, models))
    return result


def main():
    spec = connection_spec(
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        api_port=dict(type="int", default=8000),
        webui_port=dict(type="int", default=3000),
        webui=dict(type="bool", default=True),
        state_dir=dict(type="path", default="~/.cache/haw_icc_llm/access"),
        start_timeout=dict(type="int", default=20),
        kubectl=dict(type="str", default="kubectl"),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
