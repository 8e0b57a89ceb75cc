# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What haw_icc.llm runs in one namespace, for ``llm_status_info`` (status.yml): the report from
one read of the namespace (pure) and its table as lines.

``report`` takes the raw JSON objects (Deployments, Pods, Services, EndpointSlices and PVCs of the
namespace, and the state of the pods' nodes where the credentials may read nodes) and returns the
workloads (engine, model, image, GPUs, nodes, ready, restarts, age), the Services with their ready
endpoints, the PVCs and the problems, one sentence each."""

from __future__ import annotations

import datetime

from ansible_collections.haw_icc.llm.plugins.module_utils._live import command_settings
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_RESOURCE
from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import container_problems

SELECTOR = "app.kubernetes.io/part-of=haw-icc-llm"
SECTIONS = (
    ("Workloads", "workloads", ("name", "engine", "model", "image", "gpus", "nodes", "ready", "restarts", "age")),
    ("Services", "services", ("name", "ports", "endpoints")),
    ("PVCs", "pvcs", ("name", "status", "size", "class", "age")),
)


def _parse_time(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def age(ts, now):
    """kubectl-style age: 59s, 5m, 3h, 2d."""
    if not ts:
        return "-"
    s = int((now - _parse_time(ts)).total_seconds())
    if s < 120:
        return "%ds" % s
    if s < 7200:
        return "%dm" % (s // 60)
    if s < 172800:
        return "%dh" % (s // 3600)
    return "%dd" % (s // 86400)


def _live(objs):
    return [o for o in objs or [] if not (o.get("metadata") or {}).get("deletionTimestamp")]


def _name(obj):
    return (obj.get("metadata") or {}).get("name") or ""


def node_state(node):
    """'gone' for a node that does not exist (None), 'NotReady' for one whose Ready condition is not
    True, None when it is fine."""
    if node is None:
        return "gone"
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return None if cond.get("status") == "True" else "NotReady"
    return "NotReady"


def _workload(dep, pods, node_states, now):
    meta = dep.get("metadata") or {}
    labels = meta.get("labels") or {}
    spec = dep.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    own = [p for p in pods if all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in sel.items())]
    nodes = []
    for p in own:
        n = (p.get("spec") or {}).get("nodeName")
        if n and n not in [x[0] for x in nodes]:
            nodes.append((n, node_states.get(n)))
    container = (((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
    limits = (container.get("resources") or {}).get("limits") or {}
    restarts = sum(int(cs.get("restartCount") or 0) for p in own
                   for cs in (p.get("status") or {}).get("containerStatuses") or [])
    try:
        gpus = int(str(limits.get(GPU_RESOURCE, 0)))
    except ValueError:
        gpus = 0
    return {
        "name": meta.get("name"),
        "engine": labels.get("app.kubernetes.io/name") or container.get("name"),
        "component": labels.get("app.kubernetes.io/component", "-"),
        "model": command_settings(container)["model"] or "-",
        "image": container.get("image"),
        "gpus": gpus,
        "nodes": ",".join(n + (" (%s)" % st if st else "") for n, st in nodes) or "-",
        "ready": "%s/%s" % ((dep.get("status") or {}).get("readyReplicas") or 0, spec.get("replicas", 1)),
        "restarts": restarts,
        "age": age(meta.get("creationTimestamp"), now),
    }


def _service(svc, slices):
    name = _name(svc)
    endpoints = []
    for sl in slices:
        if ((sl.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") != name:
            continue
        for ep in sl.get("endpoints") or []:
            if not (ep.get("conditions") or {}).get("ready", True):
                continue
            for port in sl.get("ports") or []:
                for addr in ep.get("addresses") or []:
                    text = "%s:%s" % (addr, port.get("port"))
                    if text not in endpoints:
                        endpoints.append(text)
    return {"name": name, "ports": ",".join(str(p.get("port")) for p in (svc.get("spec") or {}).get("ports") or []),
            "endpoints": " ".join(endpoints) or "none (no ready pod)"}


def _pvc(pvc, now):
    spec = pvc.get("spec") or {}
    status = pvc.get("status") or {}
    return {"name": _name(pvc), "status": status.get("phase", "-"),
            "size": (status.get("capacity") or {}).get("storage")
            or ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
            "class": spec.get("storageClassName") or "-", "age": age((pvc.get("metadata") or {}).get("creationTimestamp"), now)}


def node_problems(pods, node_states):
    out = []
    for p in sorted(_live(pods), key=_name):
        n = (p.get("spec") or {}).get("nodeName") or ""
        state = node_states.get(n)
        if state == "gone":
            out.append("Pod %s is bound to node %s, which no longer exists: whatever its status says, Kubernetes "
                       "cannot reach it (no logs, exec or port-forward). It deletes such a pod within about a minute "
                       "and the Deployment starts a new one; run status.yml again to see it." % (_name(p), n))
        elif state == "NotReady":
            out.append("Pod %s runs on node %s, which is NotReady: the pod may not serve. Kubernetes evicts it after "
                       "about 5 minutes if the node does not recover." % (_name(p), n))
    return out


def report(namespace, deployments, pods, services, slices, pvcs, node_states=None, now=None):
    """The status report of ``namespace``; ``node_states``: node name -> 'gone' / 'NotReady' for the
    pods' nodes that are not fine (absent: fine, or could not be read)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    node_states = node_states or {}
    live_pods = _live(pods)
    return {
        "namespace": namespace,
        "workloads": [_workload(d, live_pods, node_states, now) for d in sorted(deployments or [], key=_name)],
        "services": [_service(s, slices or []) for s in sorted(services or [], key=_name)],
        "pvcs": [_pvc(v, now) for v in sorted(pvcs or [], key=_name)],
        "problems": node_problems(pods, node_states) + container_problems(pods),
    }


def pod_nodes(pods):
    """The names of the nodes the live pods are bound to, sorted."""
    return sorted(set((p.get("spec") or {}).get("nodeName") for p in _live(pods)) - {None, ""})


def lines(rep):
    """The report as the lines of a table, one section each."""
    out = ["Namespace %s" % rep["namespace"]]
    for title, key, cols in SECTIONS:
        items = rep[key]
        out.append("")
        if not items:
            out.append("%s: none" % title)
            continue
        width = dict((c, max([len(c)] + [len(str(it[c])) for it in items])) for c in cols)
        out.append("%s:" % title)
        out.append(("  " + "  ".join(c.upper().ljust(width[c]) for c in cols)).rstrip())
        for it in items:
            out.append(("  " + "  ".join(str(it[c]).ljust(width[c]) for c in cols)).rstrip())
    if rep["problems"]:
        out += ["", "Problems:"] + ["  - %s" % p for p in rep["problems"]]
    return out
