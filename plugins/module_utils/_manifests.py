# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes objects of an engine: one builder for every engine of the registry (``_engines``).

What differs between engines (command line, env, cache path, API key variable, memory) comes from
the engine object; everything else (labels, Recreate strategy, GPU toleration and affinity, probes,
volumes, the config checksum) is written once here. Pure: a role configuration (the role's variables
without their prefix, as checked by ``_engine.check``) in, plain dictionaries out; unit-tested.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine

PART_OF = "haw-icc-llm"
MANAGED_BY = "haw_icc.llm"
FIELD_MANAGER = "haw-icc-llm"
CHECKSUM = "haw-icc.de/config-checksum"
# On the engine Deployment (not its pod template, so it restarts nothing): the role configuration it
# was applied with, for scale and change_model to keep what they do not change (``_plan``).
SETTINGS = "haw-icc.de/settings"
# Configuration keys that are not the engine's settings: its identity and how a run waits.
NOT_SETTINGS = ("name", "namespace", "wait_timeout", "unschedulable_grace")
SECRET_KEY_TOKEN = "token"
SECRET_KEY_API = "api-key"


def selector(engine, name):
    return {"app.kubernetes.io/name": engine.name, "app.kubernetes.io/instance": name}


def selector_string(labels_):
    """A label selector (``a=b,c=d``) of a dict of labels."""
    return ",".join("%s=%s" % kv for kv in sorted(labels_.items()))


def labels(engine, name):
    return dict(selector(engine, name), **{"app.kubernetes.io/component": "engine",
                                           "app.kubernetes.io/part-of": PART_OF,
                                           "app.kubernetes.io/managed-by": MANAGED_BY})


def names(engine, name):
    """The objects an engine role creates and owns (removed by state=absent; the cache PVC only with purge)."""
    return {"deployment": name, "service": name, "pvc": name + "-cache", "hf_secret": name + "-hf-token",
            "key_secret": name + "-api-key" if engine.api_key else None}


def secret(engine, cfg, which, value):
    """The Secret that holds the Hugging Face token (``hf``) or the API key (``key``)."""
    n = names(engine, cfg["name"])
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": n["hf_secret" if which == "hf" else "key_secret"], "namespace": cfg["namespace"],
                         "labels": labels(engine, cfg["name"])},
            "data": {SECRET_KEY_TOKEN if which == "hf" else SECRET_KEY_API:
                     base64.b64encode(str(value).encode("utf-8")).decode("ascii")}}


def canonical(value):
    """A setting in one spelling, so that 1 and "1", or True and "true", read the same: whole and
    decimal numbers written as strings become numbers, "true"/"false" booleans; list items and
    mapping values are strings (as the manifests write them)."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if re.match(r"^-?[0-9]+$", value.strip()):
            return int(value)
        if re.match(r"^-?[0-9]+\.[0-9]+$", value.strip()):
            return float(value)
        return value
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return dict((str(k), str(v)) for k, v in value.items())
    return value


def settings_of(cfg):
    """The ``SETTINGS`` annotation: the role configuration without ``NOT_SETTINGS``, canonical, as JSON."""
    return json.dumps(dict((k, canonical(v)) for k, v in cfg.items() if k not in NOT_SETTINGS),
                      sort_keys=True, separators=(",", ":"))


def _secret_env(var, secret_name, key):
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def _probe(path, period, timeout, failures):
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures}


def _service(name, ns, lab, sel, port):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": lab},
            "spec": {"type": "ClusterIP", "selector": sel,
                     "ports": [{"name": "http", "port": int(port), "targetPort": "http", "protocol": "TCP"}]}}


def _pvc(name, ns, lab, size, storage_class):
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(size)}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns, "labels": lab},
            "spec": spec}


def checksum(pod_template, secret_versions=()):
    """The pod's config checksum: the pod template as applied (without this annotation) and the
    resourceVersions of the Secrets it reads, so that a changed token restarts the pod and nothing
    else does (a wait timeout or a value written as "1" instead of 1 is not part of the pod)."""
    text = json.dumps([pod_template, [str(v or "") for v in secret_versions]], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_objects(engine, cfg, hf_secret="", key_secret="", secret_versions=()):
    """[PersistentVolumeClaim (unless cache_emptydir), Service, Deployment] of a checked role
    configuration. ``hf_secret`` / ``key_secret``: the Secret names the pod reads the token / API key
    from ('' for none); ``secret_versions``: their resourceVersions (part of the checksum)."""
    name, ns = cfg["name"], cfg["namespace"]
    lab, n = labels(engine, name), names(engine, name)
    startup = int(cfg["startup_timeout"])
    env = list(engine.env(cfg))
    if hf_secret:
        env += [_secret_env(v, hf_secret, SECRET_KEY_TOKEN) for v in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    if key_secret and engine.api_key_env:
        env.append(_secret_env(engine.api_key_env, key_secret, SECRET_KEY_API))
    container = {
        "name": engine.name,
        "image": cfg["image"],
        "imagePullPolicy": "IfNotPresent",
        # The tail of the log becomes the termination message when the program writes none (vLLM,
        # TGI and Open WebUI write none): the rollout wait shows its last error line.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "args": [str(a) for a in engine.args(cfg)],
        "ports": [{"name": "http", "containerPort": engine.container_port, "protocol": "TCP"}],
        "env": env,
        "resources": _engine.gpu_resources(int(cfg["gpu_count"]), cfg["cpu"], engine.memory(cfg)),
        "volumeMounts": [{"name": "cache", "mountPath": engine.cache_path}, {"name": "dshm", "mountPath": "/dev/shm"}],
        "startupProbe": _probe(engine.health_path, 10, 5, (startup + 9) // 10),
        "readinessProbe": _probe(engine.health_path, 10, 5, 3),
        "livenessProbe": _probe(engine.health_path, 20, 10, 3),
    }
    pod_spec = {
        "terminationGracePeriodSeconds": 30,
        # No Docker-link variables of the namespace's Services: a Service named vllm would inject
        # VLLM_PORT=tcp://..., which vLLM reads as an integer and dies on (vLLM issue 15613).
        "enableServiceLinks": False,
        "tolerations": [_engine.gpu_toleration(cfg["gpu_type"])],
        "containers": [container],
        "volumes": [
            {"name": "cache", "emptyDir": {}} if cfg.get("cache_emptydir")
            else {"name": "cache", "persistentVolumeClaim": {"claimName": n["pvc"]}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": _engine.shm_size(cfg)}},
        ],
    }
    if cfg.get("node_affinity"):
        pod_spec["affinity"] = {"nodeAffinity": _engine.node_affinity(cfg["gpu_type"])}
    annotations = dict((str(k), str(v)) for k, v in sorted((cfg.get("pod_annotations") or {}).items()))
    template = {"metadata": {"labels": lab, "annotations": annotations}, "spec": pod_spec}
    template["metadata"]["annotations"] = dict(annotations, **{CHECKSUM: checksum(template, secret_versions)})
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": n["deployment"], "namespace": ns, "labels": lab,
                     "annotations": {SETTINGS: settings_of(cfg)}},
        "spec": {
            "replicas": 1,
            # A RollingUpdate needs spare GPUs and deadlocks in a full quota.
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": startup + 300,
            "selector": {"matchLabels": selector(engine, name)},
            "template": template,
        },
    }
    objects = [_service(n["service"], ns, lab, selector(engine, name), cfg["service_port"]), deployment]
    if not cfg.get("cache_emptydir"):
        objects.insert(0, _pvc(n["pvc"], ns, lab, cfg["cache_size"], cfg.get("storage_class")))
    return objects


# --- Open WebUI -------------------------------------------------------------------------------------

WEBUI_APP = "open-webui"
WEBUI_PORT = 8080
WEBUI_DATA = "/app/backend/data"
WEBUI_SECRET_KEY = "secret-key"


def webui_selector(name):
    return {"app.kubernetes.io/name": WEBUI_APP, "app.kubernetes.io/instance": name}


def webui_labels(name):
    return dict(webui_selector(name), **{"app.kubernetes.io/component": "webui", "app.kubernetes.io/part-of": PART_OF,
                                         "app.kubernetes.io/managed-by": MANAGED_BY})


def webui_names(name):
    """The objects of the webui role. The WEBUI_SECRET_KEY Secret is generated once and kept by
    state=absent, like the chat history PVC (only purge removes them)."""
    return {"deployment": name, "service": name, "ingress": name, "pvc": name + "-data",
            "secret_key": name + "-secret-key", "tls": name + "-tls"}


def webui_secret_key(cfg, value):
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": webui_names(cfg["name"])["secret_key"], "namespace": cfg["namespace"],
                         "labels": webui_labels(cfg["name"])},
            "data": {WEBUI_SECRET_KEY: base64.b64encode(value.encode("utf-8")).decode("ascii")}}


def webui_objects(cfg, secret_versions=()):
    """[PersistentVolumeClaim, Service, Deployment, Ingress (when ingress_enabled)] of a checked
    webui role configuration; ``secret_versions``: the resourceVersions of the Secrets the pod reads
    (its WEBUI_SECRET_KEY and the engine's API key): a rotated engine key restarts the WebUI so that
    it sends the new one."""
    name, ns = cfg["name"], cfg["namespace"]
    lab, n = webui_labels(name), webui_names(name)
    startup = int(cfg["startup_timeout"])
    env = [{"name": "OPENAI_API_BASE_URL", "value": cfg["openai_api_base_url"]}]
    if cfg.get("openai_api_key_secret"):
        env.append(_secret_env("OPENAI_API_KEY", cfg["openai_api_key_secret"], cfg["openai_api_key_secret_key"]))
    env += [
        {"name": "ENABLE_OLLAMA_API", "value": "False"},
        # Otherwise the model picker also offers Open WebUI's "Arena Model" (a blind comparison of
        # models), which answers with a random model; the namespace has one.
        {"name": "ENABLE_EVALUATION_ARENA_MODELS", "value": "False"},
        # Otherwise the OpenAI URL is read on first launch only and a model change never arrives.
        {"name": "ENABLE_PERSISTENT_CONFIG", "value": "False"},
        _secret_env("WEBUI_SECRET_KEY", n["secret_key"], WEBUI_SECRET_KEY),
        {"name": "DATA_DIR", "value": WEBUI_DATA},
    ]
    res = {"cpu": str(cfg["cpu"]), "memory": str(cfg["memory"])}
    container = {
        "name": WEBUI_APP, "image": cfg["image"], "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "ports": [{"name": "http", "containerPort": WEBUI_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": dict(res), "limits": dict(res)},
        "volumeMounts": [{"name": "data", "mountPath": WEBUI_DATA}],
        "startupProbe": _probe("/health", 10, 5, (startup + 9) // 10),
        "readinessProbe": _probe("/health", 10, 5, 3),
        "livenessProbe": _probe("/health", 20, 10, 3),
    }
    template = {"metadata": {"labels": lab}, "spec": {
        "terminationGracePeriodSeconds": 30, "enableServiceLinks": False, "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": n["pvc"]}}]}}
    template["metadata"]["annotations"] = {CHECKSUM: checksum(template, secret_versions)}
    objects = [
        _pvc(n["pvc"], ns, lab, cfg["data_size"], cfg.get("storage_class")),
        _service(n["service"], ns, lab, webui_selector(name), cfg["service_port"]),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n["deployment"], "namespace": ns, "labels": lab},
         "spec": {"replicas": 1,
                  # The chat history PVC is ReadWriteOnce: the old pod must let go of it first.
                  "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 3,
                  "progressDeadlineSeconds": startup + 300, "selector": {"matchLabels": webui_selector(name)},
                  "template": template}},
    ]
    if cfg.get("ingress_enabled"):
        meta = {"name": n["ingress"], "namespace": ns, "labels": lab}
        spec = {"ingressClassName": cfg["ingress_class"], "rules": [{"host": cfg["ingress_host"], "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": n["service"], "port": {"name": "http"}}}}]}}]}
        if cfg.get("ingress_issuer"):
            meta["annotations"] = {"cert-manager.io/cluster-issuer": cfg["ingress_issuer"]}
            spec["tls"] = [{"hosts": [cfg["ingress_host"]], "secretName": n["tls"]}]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec})
    return objects
