# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply and delete of the few namespaced kinds the roles own, in one process.

kubernetes.core's ``k8s`` module does the same with its dynamic client; the engine core
(action plugin ``llm_engine``) does it here, on the controller, so that one task applies the Secrets,
the PVC, the Service and the Deployment and waits for the rollout without a module process per step.
``changed`` follows kubernetes.core: the object as it was against the object the API server returns
(for a check-mode run, its dry-run answer), without status and the server's bookkeeping fields.
"""

from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils._manifests import FIELD_MANAGER, SETTINGS

# (apiVersion, kind) -> the collection path under /namespaces/<ns>/.
KINDS = {
    ("v1", "Secret"): "/api/v1/namespaces/%s/secrets",
    ("v1", "Service"): "/api/v1/namespaces/%s/services",
    ("v1", "PersistentVolumeClaim"): "/api/v1/namespaces/%s/persistentvolumeclaims",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/%s/deployments",
    ("networking.k8s.io/v1", "Ingress"): "/apis/networking.k8s.io/v1/namespaces/%s/ingresses",
    ("batch/v1", "Job"): "/apis/batch/v1/namespaces/%s/jobs",
    ("v1", "Pod"): "/api/v1/namespaces/%s/pods",
    ("v1", "ConfigMap"): "/api/v1/namespaces/%s/configmaps",
}
# Fields the API server (or a controller) writes: not part of what a run changes.
_SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def path(api_version, kind, namespace, name=None):
    try:
        base = KINDS[(api_version, kind)] % quote(namespace, safe="")
    except KeyError:
        raise ValueError("%s/%s is not a kind the collection applies" % (api_version, kind))
    return base if name is None else "%s/%s" % (base, quote(name, safe=""))


def comparable(obj):
    """The object without status and the fields the server writes (what ``changed`` and the diff compare)."""
    if obj is None:
        return None
    out = dict((k, v) for k, v in obj.items() if k != "status")
    meta = dict((k, v) for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA)
    annotations = dict((k, v) for k, v in (meta.get("annotations") or {}).items() if k not in _SERVER_ANNOTATIONS)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _readable_settings(obj):
    """The object with its settings annotation (one line of JSON) as a mapping, so that a diff shows
    the one setting that changed instead of two long lines."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        settings = json.loads(annotations[SETTINGS])
    except (KeyError, TypeError, ValueError):
        return obj
    return dict(obj, metadata=dict(obj["metadata"], annotations=dict(annotations, **{SETTINGS: settings})))


def diff(before, after):
    """An Ansible diff of one object: without status and the server's fields, the settings
    annotation as a mapping, and a Secret's data never shown."""
    def shown(obj):
        obj = comparable(obj)
        if obj is not None and obj.get("kind") == "Secret":
            obj = dict(obj, data=dict((k, "(hidden)") for k in obj.get("data") or {}))
        return _readable_settings(obj) if obj else {}

    ref = after or before or {}
    header = "%s/%s" % (ref.get("kind"), (ref.get("metadata") or {}).get("name"))
    return {"before": shown(before), "after": shown(after), "before_header": header, "after_header": header}


def get(kube, api_version, kind, namespace, name):
    """The object, or None when it does not exist."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        return json.loads(kube.get_raw(path(api_version, kind, namespace, name)))
    except ApiException as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise


def apply(kube, obj, dry_run=False):
    """Server-side apply ``obj`` (field manager haw-icc-llm, conflicts forced, as the roles did with
    kubernetes.core). Returns ``{"changed", "before", "after"}``; ``dry_run`` asks the API server
    what it would do and changes nothing."""
    meta = obj["metadata"]
    api_version, kind, ns, name = obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
    before = get(kube, api_version, kind, ns, name)
    query = {"fieldManager": FIELD_MANAGER, "force": "true", "dryRun": "All" if dry_run else None}
    after = json.loads(kube.request_raw("PATCH", path(api_version, kind, ns, name), query, body=json.dumps(obj),
                                        content_type="application/apply-patch+yaml"))
    return {"changed": comparable(before) != comparable(after), "before": before, "after": after}


def delete(kube, api_version, kind, namespace, name, dry_run=False, wait_timeout=0, poll=1.0,
           clock=time.monotonic, sleep=time.sleep, progress=None):
    """Delete an object (its dependents first: foreground propagation) and, with ``wait_timeout``,
    wait until it is gone (``progress(seconds waited)`` after each look). Returns ``{"changed",
    "before"}``; a missing object is not a change."""
    before = get(kube, api_version, kind, namespace, name)
    if before is None:
        return {"changed": False, "before": None}
    if (before.get("metadata") or {}).get("deletionTimestamp") is None:
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

        # In the body: the API server reads a DELETE's query parameters only when it has no body, so a
        # dryRun in the query next to this body would delete for real.
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            kube.request_raw("DELETE", path(api_version, kind, namespace, name), body=body,
                             content_type="application/json")
        except ApiException as exc:
            if getattr(exc, "status", None) != 404:
                raise
    if wait_timeout and not dry_run:
        start = clock()
        while get(kube, api_version, kind, namespace, name) is not None:
            if clock() - start >= wait_timeout:
                raise TimeoutError("%s %s/%s is still there %d s after it was deleted (finalizers, or pods that do not "
                                   "stop?): kubectl -n %s describe %s %s"
                                   % (kind, namespace, name, wait_timeout, namespace, kind.lower(), name))
            if progress is not None:
                progress(clock() - start)
            sleep(poll)
    return {"changed": True, "before": before}
