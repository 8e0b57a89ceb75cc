# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for a Deployment rollout in one process, and the rules that judge it.

``rollout_status`` is the one set of predicates: where a rollout stands, from the Deployment and its
pods (available, failed because waiting cannot help, or still progressing). ``wait_rollout`` polls
and applies them over time: an unschedulable pod is given a grace (GPUs held by a terminating pod,
a node that is away for a moment) unless its reason cannot change by waiting, and an unreachable
API server is retried for a while. Both are pure (the reads and the clock are passed in), so they are
unit-tested with a fake clock.
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ClusterUnreachableError, IccError, PermissionDeniedError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_RESOURCE, GPU_TYPES, quantity
from ansible_collections.haw_icc.llm.plugins.module_utils._manifests import CHECKSUM

# Seconds an unschedulable pod may wait for a reason that can go away by itself before the rollout
# fails: a pod that is terminating gives its GPUs back within its grace period (30 s by default), and
# a node that missed heartbeats is tainted unreachable until the node lifecycle controller sees it
# again (node-monitor-grace-period 50 s, then a 5 s monitor period). 120 s covers both with room.
UNSCHEDULABLE_GRACE = 120.0
# How often the nodes are read again (only while a pod is unschedulable, only with the right to).
NODES_TTL = 30.0
# Taints that Kubernetes itself sets and removes again (node conditions, cordon): waiting can help.
TRANSIENT_TAINT_PREFIX = "node.kubernetes.io/"

# --- The rules --------------------------------------------------------------------------------------

# Container waiting reasons after which waiting longer does not help, with what to do about them.
_IMAGE_HINT = ("the image cannot be pulled: check its registry, name and tag (%s) and that the registry is "
               "reachable from the cluster; a private registry needs imagePullSecrets")
_FAIL_WAITING = {
    "ErrImagePull": _IMAGE_HINT,
    "ImagePullBackOff": _IMAGE_HINT,
    "InvalidImageName": "the image name is not valid: check %s",
    "CrashLoopBackOff": ("the container keeps crashing: read its log (kubectl logs --previous, or "
                         "playbooks/logs.yml), e.g. out of GPU memory or a model the engine cannot load"),
    "CreateContainerConfigError": "a Secret or ConfigMap (key) the container references is missing",
    "CreateContainerError": "the container runtime cannot create the container",
}
# The variable that sets the image of the roles' containers (by container name).
_IMAGE_VARS = dict([(e.name, e.prefix + "image") for e in _engines.ENGINES.values()], **{"open-webui": "webui_image"})

# Per-node reasons of the scheduler ("0/4 nodes are available: 1 node(s) ..., 3 Insufficient ...")
# that no amount of waiting changes for this pod: its own affinity or selector rules the node out.
_PERMANENT_REASONS = ("didn't match Pod's node affinity/selector", "didn't match pod's node affinity/selector")
_TAINT = re.compile(r"untolerated taint\s*\{([^:}]+):")
_COUNT = re.compile(r"^\s*(\d+)\s+(.*?)\s*$")


def last_exit(cs):
    """How a container last ended, from its ``lastState.terminated``: exit code, reason and the last
    line of its termination message, e.g. ``It last exited with code 1 (Error): ValueError: ...``;
    '' when it has not ended before. The roles' containers set ``terminationMessagePolicy:
    FallbackToLogsOnError``, so the kubelet puts the tail of the log there when the program writes no
    termination message (vLLM and TGI write none): the program's own last error line."""
    ended = ((cs or {}).get("lastState") or {}).get("terminated") or {}
    if not ended:
        return ""
    text = "It last exited with code %s" % ended.get("exitCode", "?")
    if ended.get("reason"):
        text += " (%s)" % ended["reason"]
    lines = [line.strip() for line in str(ended.get("message") or "").splitlines() if line.strip()]
    if lines:
        text += ": %s" % lines[-1][:500]
    return text


def _waiting_failure(pod, cs, waiting):
    reason = waiting["reason"]
    hint = _FAIL_WAITING[reason]
    if "%s" in hint:
        hint = hint % _IMAGE_VARS.get(cs.get("name"), "the image")
    image = cs.get("image") or ""
    text = "container %s of pod %s%s: %s: %s (%s)" % (
        cs.get("name"), pod["metadata"].get("name"), (" (image %s)" % image) if image else "", reason,
        waiting.get("message", ""), hint)
    ended = last_exit(cs)
    return "%s. %s" % (text, ended.rstrip(".")) if ended else text


def container_problems(pods):
    """What keeps the containers of live ``pods`` from running, one sentence each (status.yml):
    a waiting reason after which waiting does not help, the hint for it, the restarts and how the
    container last ended."""
    out = []
    for pod in pods or []:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _FAIL_WAITING:
                text = _waiting_failure(pod, cs, waiting)
                restarts = int(cs.get("restartCount") or 0)
                if restarts:
                    text += " (restarted %d time%s)" % (restarts, "" if restarts == 1 else "s")
                out.append(text[0].upper() + text[1:])
    return out


def unschedulable_message(pod):
    """The scheduler's message when the pod is ``PodScheduled=False/Unschedulable``, else None."""
    for cond in (pod.get("status") or {}).get("conditions", []) or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return cond.get("message") or ""
    return None


def node_reasons(message):
    """The per-node reasons of a scheduler message, as ``[(count, text)]``; [] when it has none.

    ``"0/4 nodes are available: 1 node(s) had untolerated taint {x: }, 3 Insufficient nvidia.com/gpu.
    preemption: ..."`` -> ``[(1, "node(s) had untolerated taint {x: }"), (3, "Insufficient nvidia.com/gpu")]``.
    """
    text = str(message or "")
    if "nodes are available:" not in text:
        return []
    text = text.split("nodes are available:", 1)[1]
    text = re.split(r"\.\s+(?:preemption:|no new claims)", text, maxsplit=1)[0].strip().rstrip(".")
    out = []
    for part in re.split(r",\s+(?=\d+\s)", text):
        match = _COUNT.match(part)
        if match:
            out.append((int(match.group(1)), match.group(2)))
    return out


def _is_permanent(reason):
    if any(p in reason for p in _PERMANENT_REASONS):
        return True
    taint = _TAINT.search(reason)
    return bool(taint) and not taint.group(1).strip().startswith(TRANSIENT_TAINT_PREFIX)


def pod_requests(pod):
    """Sum of the containers' requests of a pod: ``{resource: float}``."""
    total = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for key, value in (((container.get("resources") or {}).get("requests")) or {}).items():
            try:
                total[key] = total.get(key, 0.0) + (quantity(value) or 0.0)
            except ValueError:
                continue
    return total


def permanent_unschedulable(pod, message, nodes=None):
    """Why the unschedulable ``pod`` cannot be scheduled however long it waits, or None when waiting
    may help (GPUs or CPUs that a terminating pod still holds, a node that is away for a moment, a
    reason we cannot read).

    Permanent: more GPUs than any ICC node has. With ``nodes`` (the cluster's nodes, when the
    credentials may read them): every node is ruled out for good, by a taint the pod does not tolerate
    (other than the ``node.kubernetes.io/*`` taints that Kubernetes sets and removes itself), by the
    pod's node selector or required node affinity, or by a request larger than the node's allocatable.
    Without nodes: a scheduler message in which every node is ruled out by the pod's own node affinity
    or selector or by a named taint it does not tolerate (kube-scheduler v1.35 no longer names taints,
    so there it cannot tell and waits).
    """
    requests = pod_requests(pod)
    most = max(info["max_per_node"] for info in GPU_TYPES.values())
    gpus = requests.get(GPU_RESOURCE, 0)
    if gpus > most:
        return "it asks for %d GPUs and no ICC node has more than %d" % (gpus, most)
    if nodes:
        why = [node_rules_out(pod, node, requests) for node in nodes]
        if all(why):
            return "no node can ever take it: %s" % "; ".join(
                "%s: %s" % ((n.get("metadata") or {}).get("name"), w) for n, w in zip(nodes, why))
        return None
    reasons = node_reasons(message)
    if reasons and all(_is_permanent(text) for _count, text in reasons):
        return "every node is ruled out by the pod's own placement rules"
    return None


def node_rules_out(pod, node, requests=None):
    """Why ``node`` can never run ``pod`` (a reason that waiting cannot change), or None."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") \
                and not str(taint.get("key", "")).startswith(TRANSIENT_TAINT_PREFIX) \
                and not any(_tolerates(t, taint) for t in spec.get("tolerations") or []):
            return "taint %s=%s:%s not tolerated" % (taint.get("key"), taint.get("value", ""), taint.get("effect"))
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return "node selector %s=%s does not match" % (key, value)
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
    if required and not any(_term_matches(term, labels) for term in required):
        return "required node affinity does not match"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    for resource, wanted in sorted((requests if requests is not None else pod_requests(pod)).items()):
        try:
            have = quantity(allocatable.get(resource)) or 0.0
        except ValueError:
            continue
        if wanted > have:
            return "asks for %s %s, allocatable %s" % (_fmt(wanted), resource, _fmt(have))
    return None


def _tolerates(toleration, taint):
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration.get("key") == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def _term_matches(term, labels):
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        have = labels.get(key)
        if op == "In" and have not in values or op == "NotIn" and have in values \
                or op == "Exists" and key not in labels or op == "DoesNotExist" and key in labels:
            return False
        if op in ("Gt", "Lt"):
            try:
                if not (int(have) > int(values[0]) if op == "Gt" else int(have) < int(values[0])):
                    return False
            except (TypeError, ValueError, IndexError):
                return False
    return bool(term.get("matchExpressions") or term.get("matchFields"))


def _fmt(number):
    return ("%d" % number) if float(number).is_integer() else ("%g" % number)


def rollout_status(deployment, pods=None, nodes=None):
    """Where a Deployment rollout stands, from the Deployment object and its pods.

    Returns ``{"state": "available" | "failed" | "progressing", "reason": str, "created": bool,
    "scheduled": bool, "unschedulable": [...]}`` (``created``: the current ReplicaSet has its pod;
    ``scheduled``: every live pod has a node; ``unschedulable``: the live pods the scheduler cannot
    place yet, ``{"pod", "uid", "message"}`` each, for ``wait_rollout``'s grace). ``failed`` means
    waiting longer cannot help: the ReplicaSet cannot create pods (quota, LimitRange: condition
    ReplicaFailure), a pod cannot be scheduled for a reason that waiting cannot change
    (``permanent_unschedulable``), the progress deadline passed, or a container cannot start (image
    pull errors, crash loop, missing Secret key, bad image name); the reason then names the container,
    the pod, the image, the kubelet's reason and a hint.
    """
    live = [p for p in pods or [] if not (p.get("metadata") or {}).get("deletionTimestamp")]
    result = _rollout_state(deployment, live, nodes)
    status = (deployment or {}).get("status") or {}
    result["created"] = bool(deployment) and (
        status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 0)
        and status.get("updatedReplicas", 0) >= 1)
    result["scheduled"] = bool(live) and all((p.get("spec") or {}).get("nodeName") for p in live)
    result.setdefault("unschedulable", [])
    return result


REVISION = "deployment.kubernetes.io/revision"


def current_pods(deployment, replicasets, pods):
    """The pods of the Deployment's current ReplicaSet (the one of its revision, by the
    ``pod-template-hash`` label). Before the Deployment controller has seen the latest change
    (``observedGeneration`` < ``generation``), none: a pod of the template this run replaces (still
    crash-looping, say, in the moment before the controller scales it down) is not judged as the new
    rollout's. Without ReplicaSets to go by (``replicasets`` None), every pod."""
    if not deployment or replicasets is None:
        return list(pods)
    meta, status = deployment.get("metadata") or {}, deployment.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return []
    revision = (meta.get("annotations") or {}).get(REVISION)
    hashes = set(((rs.get("metadata") or {}).get("labels") or {}).get("pod-template-hash") for rs in replicasets
                 if ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION) == revision)
    hashes.discard(None)
    if not hashes:
        return []
    return [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get("pod-template-hash") in hashes]


def _rollout_state(deployment, live, nodes):
    if not deployment:
        return {"state": "progressing", "reason": "the Deployment does not exist yet"}
    meta = deployment.get("metadata", {})
    status = deployment.get("status", {}) or {}
    conds = {c.get("type"): c for c in status.get("conditions", []) or []}
    rf = conds.get("ReplicaFailure")
    if rf and rf.get("status") == "True":
        return {"state": "failed", "reason": "the ReplicaSet cannot create the pod: %s"
                % rf.get("message", rf.get("reason", ""))}
    prog = conds.get("Progressing")
    if prog and prog.get("status") == "False" and prog.get("reason") == "ProgressDeadlineExceeded":
        return {"state": "failed", "reason": "progress deadline exceeded: %s" % prog.get("message", "")}
    pending = []
    for pod in live:
        name = (pod.get("metadata") or {}).get("name")
        message = unschedulable_message(pod)
        if message is not None:
            why = permanent_unschedulable(pod, message, nodes)
            if why:
                return {"state": "failed", "reason": "pod %s cannot be scheduled, and waiting cannot change that (%s): "
                        "%s" % (name, why, message)}
            pending.append({"pod": name, "uid": (pod.get("metadata") or {}).get("uid") or name,
                            "message": message})
        for cs in (pod.get("status") or {}).get("containerStatuses", []) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _FAIL_WAITING:
                return {"state": "failed", "reason": _waiting_failure(pod, cs, waiting)}
    generation = meta.get("generation", 0)
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    avail = conds.get("Available")
    if status.get("observedGeneration", 0) >= generation \
            and status.get("updatedReplicas", 0) >= replicas \
            and status.get("availableReplicas", 0) >= replicas \
            and status.get("replicas", 0) == status.get("updatedReplicas", 0) \
            and avail and avail.get("status") == "True":
        return {"state": "available", "reason": "%d of %d pods available" % (
            status.get("availableReplicas", 0), replicas)}
    reason = "waiting: %d of %d pods updated, %d available" % (
        status.get("updatedReplicas", 0), replicas, status.get("availableReplicas", 0))
    for item in pending:
        reason += "; pod %s cannot be scheduled yet: %s" % (item["pod"], item["message"])
    for pod in live:
        for cs in (pod.get("status") or {}).get("containerStatuses", []) or []:
            state = cs.get("state") or {}
            waiting = state.get("waiting") or {}
            if waiting.get("reason"):
                reason += "; container %s: %s %s" % (cs.get("name"), waiting["reason"],
                                                     waiting.get("message", ""))
            elif "running" in state and not cs.get("ready"):
                reason += ("; container %s of pod %s runs but is not ready (its readiness probe does not pass "
                           "yet: the model may still be loading; see its log)"
                           % (cs.get("name"), pod["metadata"].get("name")))
    return {"state": "progressing", "reason": reason, "unschedulable": pending}


# --- Progress: what a wait is at, in words ------------------------------------------------------------

def elapsed_text(seconds):
    """``190`` -> ``3m10s``, ``45`` -> ``45s``."""
    seconds = int(seconds)
    return "%dm%02ds" % divmod(seconds, 60) if seconds >= 60 else "%ds" % seconds


def newest(pods):
    """The newest pod that is not being deleted, or None."""
    live = [p for p in pods or [] if not (p.get("metadata") or {}).get("deletionTimestamp")]
    live.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return live[-1] if live else None


def _event_time(event):
    return event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
        "creationTimestamp") or ""


def phase(pods, events=(), last_log=None):
    """What the rollout waits for now, from its newest pod, that pod's Events (Scheduled, Pulling,
    Pulled, Created, Started, BackOff) and its container's last log line: a few words for a
    progress line, e.g. ``pulling vllm/vllm-openai:v0.8.5 on gpu-v100-2`` or ``loading the model
    (last log: "Loading weights took 41.2 s")``."""
    pod = newest(pods)
    if pod is None:
        return "waiting for the pod to be created"
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    where = " on %s" % node if node else ""
    message = unschedulable_message(pod)
    if message is not None:
        return "not scheduled yet: %s" % message
    mine = [e for e in events or () if (e.get("involvedObject") or {}).get("name") == meta.get("name")]
    mine.sort(key=_event_time)
    latest = mine[-1] if mine else {}
    restarts = sum(int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or [])
    again = " (restarts: %d)" % restarts if restarts else ""
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff" or latest.get("reason") == "BackOff":
            return "restarting after a crash (back-off)%s%s" % (where, again)
        if waiting.get("reason") and waiting.get("reason") != "ContainerCreating":
            return "%s%s%s" % (waiting["reason"], where, again)
        if "running" in state and not cs.get("ready"):
            tail = (" (last log: \"%s\")" % last_log.strip()[:120]) if last_log and last_log.strip() else ""
            return "loading the model%s%s%s" % (where, tail, again)
        if cs.get("ready"):
            return "ready%s" % where
    if latest.get("reason") == "Pulling":
        image = re.search(r'image "([^"]+)"', latest.get("message") or "")
        return "pulling %s%s" % (image.group(1) if image else "the image", where)
    if latest.get("reason") in ("Pulled", "Created", "Started"):
        return "starting the container%s" % where
    if node:
        return "scheduled%s, creating the container" % where
    return "waiting to be scheduled"


# --- Reading and waiting ----------------------------------------------------------------------------

def read_rollout(kube, namespace, name, selector):
    """The Deployment (None when it does not exist) and its current pods (``current_pods``) among
    those matching ``selector``."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        deployment = json.loads(kube.get_raw("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name)))
    except ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise
        deployment = None
    pods = json.loads(kube.get_raw("/api/v1/namespaces/%s/pods" % namespace,
                                   {"labelSelector": selector})).get("items") or []
    if deployment is not None:
        try:
            replicasets = json.loads(kube.get_raw("/apis/apps/v1/namespaces/%s/replicasets" % namespace,
                                                  {"labelSelector": selector})).get("items") or []
        except PermissionDeniedError:  # may not list ReplicaSets: judge every pod, as before
            replicasets = None
        pods = current_pods(deployment, replicasets, pods)
    return deployment, pods


def read_nodes(kube):
    """The cluster's nodes; None when these credentials may not list them (HTTP 403), [] when the read
    fails otherwise (unknown for now: read again later)."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        return json.loads(kube.get_raw("/api/v1/nodes")).get("items") or []
    except PermissionDeniedError:
        return None
    except (ApiException, IccError, ValueError):
        return []


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


class _Nodes:
    """Nodes read lazily (only while a pod is unschedulable) and again after ``NODES_TTL`` seconds;
    None for good once the credentials may not read them."""

    def __init__(self, reader, clock):
        self.reader, self.clock = reader, clock
        self.value, self.at, self.denied = None, None, reader is None

    def get(self):
        if self.denied:
            return None
        if self.at is None or self.clock() - self.at >= NODES_TTL:
            self.value, self.at = self.reader(), self.clock()
            self.denied = self.value is None
        return self.value


def wait_rollout(read, timeout, poll=2.0, api_grace=30.0, unschedulable_grace=UNSCHEDULABLE_GRACE,
                 read_nodes=None, clock=time.monotonic, sleep=time.sleep, progress=None):
    """Poll ``read()`` -> (deployment, pods) until the rollout is available or failed, or ``timeout``
    seconds passed.

    A pod the scheduler cannot place fails the rollout at once when waiting cannot change that
    (``permanent_unschedulable``, with the nodes from ``read_nodes()`` when given), and otherwise once
    it has been unschedulable for ``unschedulable_grace`` seconds in this wait. An unreachable API
    server is retried for ``api_grace`` seconds in a row, then its error is raised.

    Returns the last ``rollout_status`` verdict plus ``pods``, ``polls``, ``elapsed``, ``timed_out``
    and ``unschedulable_waits`` (each pod that had to wait for a node: ``{"pod", "seconds",
    "message", "scheduled"}``). ``progress(elapsed, verdict)`` is called after each poll that is
    not the last (the action plugins show a line from it now and then).
    """
    start = clock()
    polls = 0
    down_since = None
    first_seen = {}  # uid -> when this wait first saw the pod unschedulable
    waits = {}       # uid -> {"pod", "seconds", "message", "scheduled"}
    nodes = _Nodes(read_nodes, clock)
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
        if verdict["state"] == "progressing" and verdict["unschedulable"] and read_nodes is not None:
            known = nodes.get()
            if known:
                verdict = rollout_status(deployment, pods, nodes=known)
        now = clock()
        pending = {u["uid"]: u for u in verdict.get("unschedulable") or []}
        for uid, item in pending.items():
            since = first_seen.setdefault(uid, now)
            waits[uid] = {"pod": item["pod"], "seconds": round(now - since, 1), "message": item["message"],
                          "scheduled": False}
        for uid, item in waits.items():
            if uid not in pending:
                item["scheduled"] = True
        over = [u for uid, u in pending.items() if now - first_seen[uid] >= unschedulable_grace]
        if verdict["state"] == "progressing" and over:
            verdict = dict(verdict, state="failed", reason="pod %s cannot be scheduled: %s (for %d s, longer than the "
                           "%d s that GPUs of a terminating pod or a node that is away for a moment need to come "
                           "back)" % (over[0]["pod"], over[0]["message"], now - first_seen[over[0]["uid"]],
                                      unschedulable_grace))
        elapsed = now - start
        timed_out = verdict["state"] == "progressing" and elapsed >= timeout
        if verdict["state"] != "progressing" or timed_out:
            if timed_out:
                verdict["reason"] = "not available after %d s (%s)" % (timeout, verdict["reason"])
            verdict.update(pods=pod_summary(p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")),
                           polls=polls, elapsed=round(elapsed, 1), timed_out=timed_out,
                           unschedulable_waits=list(waits.values()))
            return verdict
        if progress is not None:
            progress(elapsed, verdict)
        sleep(min(poll, max(0.0, timeout - elapsed)))


def wait_deployment(kube, namespace, name, selector, what, timeout, poll=2.0, api_grace=30.0,
                    unschedulable_grace=UNSCHEDULABLE_GRACE, checksum=None, progress=None):
    """Wait until the Deployment ``name`` is available (``wait_rollout`` over the API). Returns
    ``(result, failure)``: the verdict as a module result, and the message to fail with or None.
    ``checksum``: the config checksum this run applied; another one on the Deployment after the wait
    means another run changed it meanwhile."""
    last = {}

    def read():
        last["deployment"], last["pods"] = read_rollout(kube, namespace, name, selector)
        return last["deployment"], last["pods"]

    def with_pods(elapsed, verdict):  # the progress callback also gets the pods of the last read
        progress(elapsed, dict(verdict, pods=last.get("pods") or []))

    try:
        verdict = wait_rollout(read, timeout, poll=poll, api_grace=api_grace, unschedulable_grace=unschedulable_grace,
                               read_nodes=lambda: read_nodes(kube), progress=with_pods if progress else None)
    except ClusterUnreachableError as exc:
        exc.message = "While waiting for the %s Deployment %s/%s: %s" % (what, namespace, name, exc.message)
        raise
    verdict.pop("unschedulable", None)  # the pods still waiting; unschedulable_waits has them all
    result = dict(changed=False, **verdict)
    template = ((last.get("deployment") or {}).get("spec") or {}).get("template") or {}
    found = ((template.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM)
    if checksum and verdict["state"] == "available" and found != checksum:
        return result, ("The %s Deployment %s/%s no longer carries the settings this run applied: another run "
                        "(deploy, scale or change_model into %s at the same time?) changed it while this one waited. "
                        "Let the other run end, then run this playbook again; status.yml shows what runs now."
                        % (what, namespace, name, namespace))
    if verdict["state"] != "available":
        return result, ("The %s Deployment %s/%s is not available: %s. Inspect it with: kubectl -n %s describe "
                        "deployment %s; kubectl -n %s logs deployment/%s"
                        % (what, namespace, name, verdict["reason"], namespace, name, namespace, name))
    return result, None
