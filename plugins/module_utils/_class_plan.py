# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The class-wide GPU plan: share the free GPUs among the namespaces of one run before anything is
created (pure; the action plugin ``haw_icc.llm.llm_class_plan`` reads the cluster).

Each namespace alone may fit while the class together does not. So the plan takes the namespaces in
the inventory order (``ansible_play_hosts``) and gives each its GPUs from what is left:

1. A namespace whose engine keeps its GPUs (the run does not restart it) needs nothing new.
2. Otherwise the GPUs its current engine pod holds count as free for it (a Recreate rollout, or the
   removal of the engine it replaces, gives them back first) -- for it only.
3. Its ResourceQuota must allow the GPUs (the quota's free GPUs plus those it gives back).
4. Where nodes can be read: all GPUs of one pod are on one node, so it takes the schedulable node of
   its GPU type with the fewest free GPUs that still has enough (best fit keeps big blocks for the
   namespaces that ask for several), by node name on a tie. What it takes is gone for the next ones.

A namespace that cannot get its GPUs is refused with the reason, and nothing is created for it.
Where no credentials of the run may read nodes, only the quotas are planned, and the plan says so.
"""

from __future__ import annotations


def _short(gpu_type):
    return gpu_type or "GPU"


def allocate(requests, nodes=None, nodes_note=None):
    """``requests``: in order, each ``{host, namespace, gpu_type, count, keeps, quota_free, held}``
    (``keeps``: the engine keeps running as it is; ``quota_free``: None when the quota is unknown
    or unlimited; ``held``: ``[(node, gpus)]`` of its current engine pods). ``nodes``: node views
    ``{name, gpu_type, free, schedulable}`` or None when nodes cannot be read. Returns ``{hosts:
    {host: {fits, reason, node}}, granted, refused, nodes_planned, summary}``."""
    free = None
    if nodes is not None:
        free = dict((n["name"], int(n["free"] or 0)) for n in nodes if n.get("schedulable") and n.get("free") is not None)
        types = dict((n["name"], n.get("gpu_type")) for n in nodes)
    hosts = {}
    refused = []
    for req in requests:
        count = int(req["count"])
        held = [(node, int(g)) for node, g in req.get("held") or [] if node]
        given_back = sum(g for _n, g in held)
        if req.get("keeps"):
            hosts[req["host"]] = {"fits": True, "node": held[0][0] if held else None,
                                  "reason": "its engine keeps the %d GPU%s it has" % (given_back, "" if given_back == 1 else "s")}
            continue
        reasons = []
        quota = req.get("quota_free")
        if quota is not None and quota + given_back < count:
            reasons.append("quota allows %d GPU%s, it asks for %d" % (quota + given_back, "" if quota + given_back == 1 else "s", count))
        node = None
        if free is not None and not reasons:
            pool = dict(free)
            for n, g in held:
                if n in pool:
                    pool[n] += g
            fitting = sorted((f, name) for name, f in pool.items()
                             if f >= count and (not req.get("gpu_type") or types.get(name) == req["gpu_type"]))
            if fitting:
                node = fitting[0][1]
                for n, g in held:
                    if n in free:
                        free[n] += g
                free[node] -= count
            else:
                largest = max([f for name, f in pool.items() if not req.get("gpu_type") or types.get(name) == req["gpu_type"]] or [0])
                reasons.append("%d x %s not free: the namespaces before it in the inventory take them "
                               "(largest free block left: %d)" % (count, _short(req.get("gpu_type")), largest))
        if reasons:
            hosts[req["host"]] = {"fits": False, "node": None, "reason": "; ".join(reasons)}
            refused.append((req["host"], req["namespace"], "; ".join(reasons), count, req.get("gpu_type")))
        else:
            hosts[req["host"]] = {"fits": True, "node": node,
                                  "reason": ("%d GPU%s on %s" % (count, "" if count == 1 else "s", node)) if node
                                  else "the quota allows it; node capacity not planned (%s)" % (nodes_note or "nodes unreadable")}
    total = len(requests)
    summary = "%d of %d namespaces get their GPUs" % (total - len(refused), total)
    if refused:
        kinds = {}
        for _h, _ns, reason, count, gpu_type in refused:
            key = "%d x %s %s" % (count, _short(gpu_type), "not free" if "not free" in reason else "over quota")
            kinds[key] = kinds.get(key, 0) + 1
        summary += "; %d refused: %s" % (len(refused), ", ".join("%d x (%s)" % (n, k) if n > 1 else k
                                                                 for k, n in sorted(kinds.items())))
    if free is None:
        summary += " (node capacity not planned: %s)" % (nodes_note or "no credentials of this run may read nodes")
    return {"hosts": hosts, "granted": [r["host"] for r in requests if hosts[r["host"]]["fits"]],
            "refused": [{"host": h, "namespace": ns, "reason": reason} for h, ns, reason, _c, _t in refused],
            "nodes_planned": free is not None, "summary": summary}
