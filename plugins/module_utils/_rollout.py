# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for a Deployment rollout in one process: poll the Deployment and its pods, judge them with
``_engine.rollout_status`` (the one set of fail-fast rules), and give up early when waiting cannot help
or when the API server stays unreachable."""

from __future__ import annotations

import json
import time

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ClusterUnreachableError
from ansible_collections.haw_icc.llm.plugins.module_utils._engine import rollout_status


def read_rollout(kube, namespace, name, selector):
    """The Deployment (None when it does not exist) and the pods matching ``selector``."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        deployment = json.loads(kube.get_raw("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name)))
    except ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise
        deployment = None
    pods = json.loads(kube.get_raw("/api/v1/namespaces/%s/pods" % namespace,
                                   {"labelSelector": selector})).get("items") or []
    return deployment, pods


def pod_summary(pods):
    """Name, node, phase, readiness and restarts of each live pod, for the module's return value."""
    out = []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        conds = dict((c.get("type"), c.get("status")) for c in status.get("conditions") or [])
        out.append({
            "name": meta.get("name"),
            "node": spec.get("nodeName"),
            "phase": status.get("phase"),
            "ready": conds.get("Ready") == "True",
            "restarts": sum(cs.get("restartCount", 0) for cs in status.get("containerStatuses") or []),
            "terminating": bool(meta.get("deletionTimestamp")),
        })
    return out


def wait_rollout(read, timeout, poll=2.0, api_grace=30.0, clock=time.monotonic, sleep=time.sleep):
    """Poll ``read()`` -> (deployment, pods) until the rollout is available or failed, or ``timeout``
    seconds passed. An unreachable API server is retried for ``api_grace`` seconds in a row, then its
    error is raised. Returns the last ``rollout_status`` verdict plus ``pods``, ``polls``, ``elapsed``
    and ``timed_out``."""
    start = clock()
    polls = 0
    down_since = None
    while True:
        polls += 1
        try:
            deployment, pods = read()
            down_since = None
        except ClusterUnreachableError:
            down_since = clock() if down_since is None else down_since
            if clock() - down_since >= api_grace or clock() - start >= timeout:
                raise
            sleep(poll)
            continue
        verdict = rollout_status(deployment, pods)
        elapsed = clock() - start
        timed_out = verdict["state"] == "progressing" and elapsed >= timeout
        if verdict["state"] != "progressing" or timed_out:
            if timed_out:
                verdict["reason"] = "not available after %d s (%s)" % (timeout, verdict["reason"])
            verdict.update(pods=pod_summary(p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")),
                           polls=polls, elapsed=round(elapsed, 1), timed_out=timed_out)
            return verdict
        sleep(min(poll, max(0.0, timeout - elapsed)))
