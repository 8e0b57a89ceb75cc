# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of ``icc_login``: turn a downloaded ICC kubeconfig into a checked, merged kubeconfig.

Pure parts (``source_entries``, ``merge``, ``remove``, ``masked_yaml``) are unit-tested; the
cluster parts (``validate_access``) run against the API server; ``write_kubeconfig`` writes
atomically with mode 0600.
"""

from __future__ import annotations

import copy
import os
import tempfile

from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import quota_view
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import (
    InputError,
    KubeconfigError,
    PermissionDeniedError,
)
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import LOGIN_URL, validate_dns_label
from ansible_collections.haw_icc.llm.plugins.module_utils._module import SECRET_KEYS

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

MASK = "********"

# What the collection needs in the student's namespace: (name, verb, group, resource, subresource).
NAMESPACE_PERMISSIONS = [
    ("%s_%s" % (verb, res), verb, group, res, None)
    for res, group in (("deployments", "apps"), ("services", ""), ("secrets", ""),
                       ("persistentvolumeclaims", ""), ("configmaps", ""))
    for verb in ("create", "patch", "delete")
] + [
    ("get_pods_log", "get", "", "pods", "log"),
    ("create_pods_exec", "create", "", "pods", "exec"),
    ("create_pods_portforward", "create", "", "pods", "portforward"),
] + [
    ("%s_%s" % (verb, res), verb, "", res, None)
    for res in ("pods", "events", "resourcequotas") for verb in ("get", "list")
]
# Nice to have (gpu_capacity's full cluster view), never required.
CLUSTER_PERMISSIONS = [
    ("list_nodes", "list", "", "nodes", None),
    ("list_pods_all_namespaces", "list", "", "pods", None),
]
# Without these the namespace cannot be used at all.
ESSENTIAL = ("list_pods", "create_deployments")


def missing_summary(missing, total=None):
    """The rights a refusal names: all of them when a few are missing, else how many and a few of
    them (a namespace that is not the account's misses every one)."""
    missing = list(missing or [])
    total = total or len(NAMESPACE_PERMISSIONS)
    if len(missing) <= 4:
        return ", ".join(missing)
    return "%d of the %d rights the collection needs (%s, ...)" % (len(missing), total, ", ".join(missing[:3]))


def source_entries(data, src="src"):
    """(context entry, cluster entry, user entry) of the source kubeconfig's current context."""
    contexts = [c for c in data.get("contexts") or [] if isinstance(c, dict)]
    name = data.get("current-context")
    ctx = next((c for c in contexts if c.get("name") == name), None)
    if ctx is None:
        if len(contexts) != 1:
            raise KubeconfigError("%s has %d contexts and no usable current-context." % (src, len(contexts)),
                                  "Use the unchanged config.txt from %s." % LOGIN_URL)
        ctx = contexts[0]
    body = ctx.get("context") or {}
    cluster = next((c for c in data.get("clusters") or [] if isinstance(c, dict)
                    and c.get("name") == body.get("cluster")), None)
    user = next((u for u in data.get("users") or [] if isinstance(u, dict)
                 and u.get("name") == body.get("user")), None)
    if cluster is None or not (cluster.get("cluster") or {}).get("server"):
        raise KubeconfigError("%s: context %r has no cluster with a server address." % (src, ctx.get("name")),
                              "Download a fresh kubeconfig (config.txt) at %s." % LOGIN_URL)
    if user is None:
        raise KubeconfigError("%s: context %r has no user (credentials)." % (src, ctx.get("name")),
                              "Download a fresh kubeconfig (config.txt) at %s." % LOGIN_URL)
    return ctx, cluster, user


def choose_namespace(user_id, namespace, ctx):
    """The namespace: explicit, derived from the ICC login, or the source context's."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._icc import namespace_from_user_id

    if namespace:
        return validate_dns_label(namespace, "namespace")
    if user_id:
        return namespace_from_user_id(user_id)
    found = (ctx.get("context") or {}).get("namespace")
    if not found:
        raise InputError("user_id", user_id, "needed because the kubeconfig names no namespace",
                         "your ICC login such as infwabc123 (namespace wabc123-default), or set namespace")
    return validate_dns_label(found, "namespace")


def login_entries(data, user_id=None, namespace=None, context=None, src="src"):
    """The cluster, user and context entries icc_login adds, and a minimal kubeconfig of them."""
    ctx, cluster, user = source_entries(data, src)
    ns = choose_namespace(user_id, namespace, ctx)
    name = context or ctx.get("name")
    new_ctx = {"name": name, "context": dict(ctx.get("context") or {}, namespace=ns)}
    entries = dict(cluster=copy.deepcopy(cluster), user=copy.deepcopy(user), context=new_ctx)
    minimal = {"apiVersion": "v1", "kind": "Config", "clusters": [entries["cluster"]],
               "users": [entries["user"]], "contexts": [new_ctx], "current-context": name,
               "preferences": {}}
    return entries, minimal, ns


def _upsert(items, entry):
    items = list(items or [])
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == entry["name"]:
            items[i] = entry
            return items
    items.append(entry)
    return items


def merge(existing, entries):
    """``existing`` kubeconfig dict (or None) with our entries added or replaced by name, every
    other cluster, user and context kept, and our context made current."""
    out = copy.deepcopy(existing) if existing else {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    out["clusters"] = _upsert(out.get("clusters"), entries["cluster"])
    out["users"] = _upsert(out.get("users"), entries["user"])
    out["contexts"] = _upsert(out.get("contexts"), entries["context"])
    out["current-context"] = entries["context"]["name"]
    return out


def remove(existing, context):
    """``existing`` without the context and the cluster and user only it used; None if absent."""
    contexts = [c for c in existing.get("contexts") or [] if isinstance(c, dict)]
    ctx = next((c for c in contexts if c.get("name") == context), None)
    if ctx is None:
        return None
    out = copy.deepcopy(existing)
    rest = [c for c in contexts if c.get("name") != context]
    out["contexts"] = rest
    body = ctx.get("context") or {}
    used_clusters = {(c.get("context") or {}).get("cluster") for c in rest}
    used_users = {(c.get("context") or {}).get("user") for c in rest}
    if body.get("cluster") not in used_clusters:
        out["clusters"] = [c for c in out.get("clusters") or [] if c.get("name") != body.get("cluster")]
    if body.get("user") not in used_users:
        out["users"] = [u for u in out.get("users") or [] if u.get("name") != body.get("user")]
    if out.get("current-context") == context:
        out["current-context"] = ""
    return out


def mask(data):
    """A copy with every secret value (tokens, keys, passwords) replaced by ********."""
    if isinstance(data, dict):
        return dict((k, MASK if k in SECRET_KEYS and isinstance(v, str) and v else mask(v))
                    for k, v in data.items())
    if isinstance(data, list):
        return [mask(v) for v in data]
    return data


def dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def masked_yaml(data):
    return "" if data is None else dump(mask(data))


def load_dest(path):
    """(dict or None, state) of the existing dest: state is 'missing', 'ok' or 'broken: <why>'."""
    if not os.path.exists(path):
        return None, "missing"
    if os.path.isdir(path):
        raise KubeconfigError("dest %s is a directory." % path, "Set dest to a file path such as ~/.kube/config.")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        return None, "broken: cannot be read (%s)" % exc
    if not text.strip():
        return None, "broken: empty"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, "broken: not valid YAML"
    if not isinstance(data, dict) or any(not isinstance(data.get(k) or [], list)
                                         for k in ("clusters", "users", "contexts")):
        return None, "broken: not a kubeconfig"
    return data, "ok"


def write_kubeconfig(path, data):
    """Write atomically with mode 0600 (the directory is created 0700 if missing)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".icc_login.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump(data))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.chmod(path, 0o600)


def _review(kube, verb, group, resource, subresource, namespace):
    import kubernetes

    attrs = kubernetes.client.V1ResourceAttributes(verb=verb, group=group, resource=resource,
                                                   subresource=subresource, namespace=namespace)
    body = kubernetes.client.V1SelfSubjectAccessReview(
        spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
    resp = kube.call(kube.authz.create_self_subject_access_review, body)
    return bool(resp.status and resp.status.allowed)


def validate_access(kube, namespace):
    """Ask the API server who we are allowed to be; raise if the namespace is unusable."""
    import kubernetes

    version = kube.call(kubernetes.client.VersionApi(kube.api_client).get_code)
    permissions = {}
    for name, verb, group, resource, sub in NAMESPACE_PERMISSIONS:
        permissions[name] = _review(kube, verb, group, resource, sub, namespace)
    for name, verb, group, resource, sub in CLUSTER_PERMISSIONS:
        permissions[name] = _review(kube, verb, group, resource, sub, None)
    missing = [n for n, _v, _g, _r, _s in NAMESPACE_PERMISSIONS if not permissions[n]]
    if not all(permissions[n] for n in ESSENTIAL):
        raise PermissionDeniedError(
            "Your ICC account may not use namespace %s (missing: %s)." % (namespace, missing_summary(missing)),
            "Use your own namespace w<id>-default: set user_id to your login (infw<id>) or namespace "
            "to w<id>-default.", missing_permissions=missing)
    quota = None
    other = {}
    if permissions["list_resourcequotas"]:
        import json

        # Raw JSON: CoreV1Api costs more CPU to import than the whole rest of the validation.
        items = json.loads(kube.get_raw("/api/v1/namespaces/%s/resourcequotas" % namespace)).get("items") or []
        quota, other = quota_view(items)
    return dict(server_version=version.git_version, permissions=permissions, missing_permissions=missing,
                quota=dict(gpu=quota, cpu=other.get("requests.cpu"), memory=other.get("requests.memory"),
                           memory_limit=other.get("limits.memory")),
                cluster_view=permissions["list_nodes"] and permissions["list_pods_all_namespaces"])
