# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What cleanup.yml removes and what it keeps (pure), for ``llm_objects_info``.

The collection's objects carry ``app.kubernetes.io/part-of=haw-icc-llm``. They go workloads first
(they mount the PVCs and Secrets), data last. Model caches (PVCs) and the Open WebUI secret key
(which keeps WebUI logins valid) stay unless purge. Pods owned by a workload go with it."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

# Deletion order, with the API path of each kind's namespaced list (``_apply.KINDS``).
KINDS = tuple((api_version, kind, _apply.KINDS[(api_version, kind)]) for api_version, kind in (
    ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("v1", "Pod"), ("v1", "Service"), ("networking.k8s.io/v1", "Ingress"),
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "PersistentVolumeClaim")))
DATA_KINDS = ("PersistentVolumeClaim",)


def plan(namespace, found, purge=False, keep_secrets=()):
    """``found``: ``[(api_version, kind, [objects])]`` in deletion order. Returns ``remove`` and
    ``kept`` (each ``{api_version, kind, name, keep, terminating}``), the ``definitions`` to delete
    and one ``line`` naming what goes."""
    objects = []
    for api_version, kind, items in found:
        for obj in items:
            meta = obj.get("metadata") or {}
            if kind == "Pod" and meta.get("ownerReferences"):
                continue
            keep = not purge and (kind in DATA_KINDS or (kind == "Secret" and meta.get("name") in keep_secrets))
            objects.append({"api_version": api_version, "kind": kind, "name": meta.get("name"), "keep": keep,
                            "terminating": "deletionTimestamp" in meta})
    remove = [o for o in objects if not o["keep"]]
    kept = [o for o in objects if o["keep"]]
    return {
        "namespace": namespace,
        "remove": remove,
        "kept": kept,
        "definitions": [{"apiVersion": o["api_version"], "kind": o["kind"],
                         "metadata": {"name": o["name"], "namespace": namespace}} for o in remove],
        "remove_names": names(remove) or "-",
        "kept_names": names(kept) or "-",
        "line": "%s: %s" % (namespace, names(remove) or "nothing"),
    }


def names(objects):
    return ", ".join("%s/%s" % (o["kind"], o["name"]) for o in objects)


def flag(value):
    """A true/false flag as the user wrote it (confirm=, purge=); None when it is neither."""
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    return None


def flag_problems(flags):
    """``name=value`` of each flag (a dict of the user's values) that is neither true nor false."""
    return ["%s=%s" % (name, value) for name, value in flags.items() if flag(value) is None]
