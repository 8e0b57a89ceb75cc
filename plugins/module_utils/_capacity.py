# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU capacity of the cluster as the scheduler sees it, for ``gpu_capacity``.

Reading is done with as few requests as possible (one paginated node list, one paginated
cluster-wide pod list that skips terminated pods, one quota list) and the raw JSON is used instead
of the kubernetes client's model objects, which are slow to build for thousands of pods. The math
(``pod_request``, ``node_view``, ``assess``) is pure and unit-tested.
"""

from __future__ import annotations

import json
import math
import re
import threading

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import PermissionDeniedError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import (
    GFD_COUNT,
    GFD_MEMORY,
    GFD_PRODUCT,
    GPU_RESOURCE,
    GPU_TYPES,
    quantity,
)
from ansible_collections.haw_icc.llm.plugins.module_utils._kproto import MAGIC, ProtobufError, list_continue, pod_list

ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
PAGE_SIZE = 500


def _count(value):
    """GPU counts are integers; quantities such as '4' or '4000m' both give 4."""
    q = quantity(value)
    return 0 if q is None else int(math.ceil(q - 1e-9))


def _container_request(container, resource):
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    # Extended resources: a limit without a request means request == limit.
    return _count(requests.get(resource, limits.get(resource)))


def pod_request(pod, resource=GPU_RESOURCE):
    """Effective request of a pod dict the way the scheduler computes it: the larger of the sum
    over app (and sidecar) containers and the largest init container (plus sidecars started
    before it), plus the pod overhead."""
    spec = pod.get("spec") or {}
    apps = sum(_container_request(c, resource) for c in spec.get("containers") or [])
    sidecars = 0
    init_peak = 0
    for c in spec.get("initContainers") or []:
        req = _container_request(c, resource)
        if c.get("restartPolicy") == "Always":
            sidecars += req
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + req)
    overhead = _count((spec.get("overhead") or {}).get(resource))
    return max(apps + sidecars, init_peak) + overhead


def node_gpu_type(node):
    """The ICC GPU type of a node dict: the taint key that names a GPU type, else the type whose
    product matches the GFD product label, else None."""
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("key") in GPU_TYPES:
            return taint["key"]
    product = ((node.get("metadata") or {}).get("labels") or {}).get(GFD_PRODUCT)
    for key, info in GPU_TYPES.items():
        if product and product == info["product"]:
            return key
    return None


def tolerated_taints(gpu_type):
    """Taint keys our GPU pods tolerate: the ICC type asked for, or every GPU type if none."""
    return {gpu_type} if gpu_type else set(GPU_TYPES)


def node_view(node, allocated, gpu_type=None, resource=GPU_RESOURCE):
    """One node's GPU picture; ``allocated`` None means unknown (pods not readable)."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    capacity = _count((status.get("capacity") or {}).get(resource))
    allocatable = _count((status.get("allocatable") or {}).get(resource))
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    tolerated = tolerated_taints(gpu_type)
    blocking = sorted("%s:%s" % (t.get("key"), t.get("effect")) for t in spec.get("taints") or []
                      if t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") not in tolerated)
    why = []
    if not ready:
        why.append("not Ready")
    if spec.get("unschedulable"):
        why.append("cordoned")
    if blocking:
        why.append("taint %s not tolerated" % ", ".join(blocking))
    memory = labels.get(GFD_MEMORY)
    free = None if allocated is None else max(0, allocatable - allocated)
    return dict(
        name=meta.get("name"),
        gpu_type=node_gpu_type(node),
        product=labels.get(GFD_PRODUCT),
        memory_mib=int(memory) if memory and memory.isdigit() else None,
        gpu_count_label=int(labels[GFD_COUNT]) if str(labels.get(GFD_COUNT, "")).isdigit() else None,
        capacity=capacity,
        allocatable=allocatable,
        allocated=allocated,
        free=free,
        ready=ready,
        cordoned=bool(spec.get("unschedulable")),
        schedulable=not why,
        unschedulable_reasons=why,
    )


def _matches(labels, selector):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def assess(nodes, count, gpu_type=None, quota=None, cluster_view=True, own_allocated=0,
           cluster_note=None):
    """Decide ``fits`` and a human ``reason`` from node views (already filtered) and the quota."""
    short = GPU_TYPES[gpu_type]["product"].split("-")[1].lower() if gpu_type else "GPU"
    totals = {}
    for n in nodes:
        t = totals.setdefault(n["gpu_type"] or "unknown", dict(nodes=0, capacity=0, allocatable=0,
                                                               allocated=0, free=0, schedulable_free=0))
        t["nodes"] += 1
        for key in ("capacity", "allocatable", "allocated", "free"):
            t[key] += n[key] or 0
        if n["schedulable"]:
            t["schedulable_free"] += n["free"] or 0
    usable = [n for n in nodes if n["schedulable"] and n["free"] is not None]
    best = sorted(usable, key=lambda n: (-n["free"], n["name"]))[0] if usable else None
    largest = dict(gpus=best["free"], node=best["name"]) if best else dict(gpus=0, node=None)

    reasons = []
    quota_free = None if quota is None else quota["free"]
    if quota_free is not None and count > quota_free:
        reasons.append("quota allows %d GPU%s, you asked for %d (hard %d, used %d)"
                       % (quota_free, "" if quota_free == 1 else "s", count, quota["hard"], quota["used"]))
    if cluster_view:
        if not nodes:
            reasons.append("no %s node matches%s" % (short, " (gpu_type %s)" % gpu_type if gpu_type else ""))
        elif not usable:
            reasons.append("no %s node is schedulable (%s)" % (short, "; ".join(
                "%s: %s" % (n["name"], ", ".join(n["unschedulable_reasons"])) for n in nodes)))
        elif largest["gpus"] < count:
            reasons.append("no single %s node has %d free GPU%s; largest is %d on %s"
                           % (short, count, "" if count == 1 else "s", largest["gpus"], largest["node"]))
    fits = not reasons
    if fits:
        if cluster_view:
            reason = "%d GPU%s fit: %d free on %s%s" % (
                count, "" if count == 1 else "s", largest["gpus"], largest["node"],
                "" if quota_free is None else ", quota allows %d" % quota_free)
        else:
            reason = ("quota allows %s GPUs, you asked for %d; whether a node has them free is unknown "
                      "(%s)" % ("unlimited" if quota_free is None else quota_free, count,
                                cluster_note or "no cluster view"))
    else:
        reason = "; ".join(reasons)
        if not cluster_view:
            reason += " (node capacity unknown: %s)" % (cluster_note or "no cluster view")
    return dict(fits=fits, reason=reason, totals=totals, largest_free_block=largest)


def quota_view(quotas, resource=GPU_RESOURCE):
    """hard/used/free of ``requests.<resource>`` over the namespace's ResourceQuotas (the tightest)."""
    best = None
    others = {}
    keys = ("requests.%s" % resource, resource) if "/" in resource else ("requests.%s" % resource,)
    for q in quotas:
        status = q.get("status") or {}
        hard = status.get("hard") or (q.get("spec") or {}).get("hard") or {}
        used = status.get("used") or {}
        for key in keys:
            if key in hard:
                h, u = _count(hard[key]), _count(used.get(key, 0))
                cand = dict(name=(q.get("metadata") or {}).get("name"), resource=key, hard=h, used=u,
                            free=max(0, h - u))
                if best is None or cand["free"] < best["free"]:
                    best = cand
        for key in ("requests.cpu", "requests.memory", "limits.memory", "limits.cpu"):
            if key in hard:
                others[key] = dict(hard=str(hard[key]), used=str(used.get(key, "0")))
    return best, others


def _list_all(kube, path, **query):
    """Every item of a paginated list, as dicts from the raw JSON."""
    items = []
    cont = None
    while True:
        page = json.loads(kube.get_raw(path, dict(query, limit=PAGE_SIZE, **{"continue": cont})))
        items.extend(page.get("items") or [])
        cont = (page.get("metadata") or {}).get("continue")
        if not cont:
            return items


PROTOBUF = "application/vnd.kubernetes.protobuf, application/json"


_JSON_CONTINUE = re.compile(rb'"continue"\s*:\s*"([^"]*)"')


def _peek_continue(data):
    """The continue token of a list page without decoding its items (it comes first in both
    encodings), or None."""
    if data[:4] == MAGIC:
        try:
            return list_continue(data)
        except (ProtobufError, IndexError, UnicodeDecodeError):
            return None
    head = data[:4096]
    cut = head.find(b'"items"')
    match = _JSON_CONTINUE.search(head if cut < 0 else head[:cut])
    return match.group(1).decode("utf-8") if match and match.group(1) else None


def _fetch(kube, path, query, box):
    try:
        box["data"] = kube.get_raw(path, query, accept=PROTOBUF)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
        box["error"] = exc


def _decode(kube, path, data, query, resource):
    """(items, continue) of one page in protobuf or JSON."""
    if data[:4] == MAGIC:
        try:
            return pod_list(data, resource)
        except (ProtobufError, IndexError, UnicodeDecodeError):
            # An encoding we do not understand: ask for this page again in JSON.
            data = kube.get_raw(path, query, accept="application/json")
    page = json.loads(data)
    return page.get("items") or [], (page.get("metadata") or {}).get("continue")


def _slim_pods(kube, path, resource=GPU_RESOURCE, field_selector=ACTIVE_PODS, label_selector=None):
    """(nodeName, namespace, gpu request) of every listed pod that requests the resource.

    Pages are asked for in protobuf (several times faster for the API server to encode, and pods
    without the resource are skipped undecoded, see ``_kproto``), with JSON as the fallback when the
    server answers in JSON.
    """
    out = []
    query = {"fieldSelector": field_selector, "labelSelector": label_selector, "limit": PAGE_SIZE}
    data = kube.get_raw(path, query, accept=PROTOBUF)
    while True:
        # The next page is fetched in a background thread while this one is decoded (the socket
        # wait releases the GIL).
        cont = _peek_continue(data)
        worker = box = next_query = None
        if cont:
            box = {}
            next_query = dict(query, **{"continue": cont})
            worker = threading.Thread(target=_fetch, args=(kube, path, next_query, box))
            worker.daemon = True
            worker.start()
        items, decoded_cont = _decode(kube, path, data, query, resource)
        for pod in items:
            req = pod_request(pod, resource)
            if req:
                meta = pod.get("metadata") or {}
                out.append(((pod.get("spec") or {}).get("nodeName"), meta.get("namespace"), req))
        if worker is None:
            if not decoded_cont:
                return out
            next_query = dict(query, **{"continue": decoded_cont})
            data = kube.get_raw(path, next_query, accept=PROTOBUF)
        else:
            worker.join()
            if "error" in box:
                raise box["error"]
            data = box["data"]
        query = next_query


def capacity_after_release(capacity, count, held=0, held_node=None):
    """Whether a pod asking for ``count`` GPUs fits once the current pod, which holds ``held`` GPUs
    on ``held_node``, is gone (a Recreate rollout deletes it first). ``capacity`` is the result of
    the gpu_capacity module. Returns ``{"fits": bool, "reason": str}``."""
    count = int(count)
    held = int(held or 0)
    if held <= 0:
        return {"fits": bool(capacity.get("fits")), "reason": capacity.get("reason", "")}
    reasons = []
    quota = capacity.get("quota")
    quota_free = None
    if quota and quota.get("free") is not None:
        quota_free = int(quota["free"]) + held
        if quota_free < count:
            reasons.append("quota allows %d GPU%s once the current pod's %d are released, you asked for %d "
                           "(hard %s, used %s)" % (quota_free, "" if quota_free == 1 else "s", held, count,
                                                   quota.get("hard"), quota.get("used")))
    best = None
    if capacity.get("cluster_view"):
        for node in capacity.get("nodes") or []:
            if not node.get("schedulable") or node.get("free") is None:
                continue
            free = int(node["free"]) + (held if node.get("name") == held_node else 0)
            if best is None or free > best[0]:
                best = (free, node.get("name"))
        if best is None:
            reasons.append("no schedulable node of this GPU type")
        elif best[0] < count:
            reasons.append("no single node has %d free GPUs even with the current pod's %d released; "
                           "largest is %d on %s" % (count, held, best[0], best[1]))
    if reasons:
        return {"fits": False, "reason": "; ".join(reasons)}
    if best is not None:
        return {"fits": True, "reason": "%d GPU%s fit once the current pod's %d are released: %d free on %s"
                % (count, "" if count == 1 else "s", held, best[0], best[1])}
    return {"fits": True, "reason": "quota allows %s GPUs once the current pod's %d are released; node "
            "capacity unknown (no cluster view)" % (quota_free if quota_free is not None else "unlimited", held)}


def held_gpus(kube, namespace, selector, resource=GPU_RESOURCE):
    """``[(node, gpus)]`` of the scheduled pods in ``namespace`` that match the label ``selector``."""
    return [(node, req) for node, _ns, req in _slim_pods(
        kube, "/api/v1/namespaces/%s/pods" % quote(namespace, safe=""), resource, label_selector=selector) if node]


def namespace_share(kube, namespace, selector, resource=GPU_RESOURCE):
    """What the class-wide plan needs of one namespace, without reading the whole cluster: the free
    GPUs of its quota (None when it has no GPU quota or may not read it) and ``held_gpus``."""
    try:
        quota, _other = quota_view(_list_all(kube, "/api/v1/namespaces/%s/resourcequotas" % quote(namespace, safe="")),
                                   resource)
    except PermissionDeniedError:
        quota = None
    return (quota["free"] if quota else None), held_gpus(kube, namespace, selector, resource)


def gather(kube, namespace, count, gpu_type=None, resource=GPU_RESOURCE, node_selector=None, release_selector=None):
    """Read the cluster and return the module result (without ``changed``). With ``release_selector``,
    the GPUs of the matching pods in ``namespace`` count as free (a Recreate rollout deletes them
    before the new pod is scheduled) and ``fits`` / ``reason`` are judged that way."""
    cluster_view = True
    notes = []
    nodes_raw = None
    pods = None
    try:
        nodes_raw = _list_all(kube, "/api/v1/nodes")
    except PermissionDeniedError:
        cluster_view = False
        notes.append("your account may not list nodes")
    if nodes_raw is not None:
        try:
            pods = _slim_pods(kube, "/api/v1/pods", resource)
        except PermissionDeniedError:
            cluster_view = False
            notes.append("your account may not list pods in all namespaces")
    own_pods = None
    if namespace:
        try:
            own_pods = _slim_pods(kube, "/api/v1/namespaces/%s/pods" % quote(namespace, safe=""), resource)
        except PermissionDeniedError:
            notes.append("your account may not list pods in %s" % namespace)
    quota = None
    quota_other = {}
    if namespace:
        try:
            quotas = _list_all(kube, "/api/v1/namespaces/%s/resourcequotas" % quote(namespace, safe=""))
            quota, quota_other = quota_view(quotas, resource)
        except PermissionDeniedError:
            notes.append("your account may not read the ResourceQuotas of %s" % namespace)

    per_node = {}
    for node_name, _ns, req in pods or []:
        if node_name:
            per_node[node_name] = per_node.get(node_name, 0) + req
    views = []
    for node in nodes_raw or []:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if not _count(((node.get("status") or {}).get("allocatable") or {}).get(resource)):
            continue
        if not _matches(labels, node_selector):
            continue
        if gpu_type and node_gpu_type(node) != gpu_type:
            continue
        name = node["metadata"]["name"]
        views.append(node_view(node, per_node.get(name, 0) if pods is not None else None,
                               gpu_type, resource))
    views.sort(key=lambda n: n["name"])
    if nodes_raw is not None and pods is None:
        # Nodes without pod view: capacity is known, free is not; fits cannot use the nodes.
        cluster_view = False
    own_allocated = sum(req for _n, _ns, req in own_pods or [])
    result = assess(views, count, gpu_type, quota, cluster_view, own_allocated,
                    cluster_note="; ".join(notes) or None)
    result.update(
        cluster_view=cluster_view,
        cluster_view_notes=notes,
        nodes=views,
        namespace=namespace,
        quota=quota,
        quota_other=quota_other,
        namespace_allocated=own_allocated if own_pods is not None else None,
        namespace_pods_with_gpus=len(own_pods) if own_pods is not None else None,
        requested=dict(count=count, gpu_type=gpu_type, resource=resource),
        gpu_pods=len(pods) if pods is not None else None,
    )
    if namespace and release_selector:
        held = held_gpus(kube, namespace, release_selector, resource)
        gpus = sum(req for _node, req in held)
        node = held[0][0] if held else None
        result["release"] = dict(selector=release_selector, gpus=gpus, node=node, pods=len(held))
        if gpus:
            result.update(capacity_after_release(result, count, gpus, node))
    return result
