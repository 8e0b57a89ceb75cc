"""The environment a kubelet gives a pod's container, computed from the API objects (sandbox only).

kwok runs no kubelet and no container, so nothing in the sandbox would otherwise start a program with
the environment our pods really get. This module computes it by Kubernetes' own rules, so that the
real programs (vLLM's start-up checks, the engine, Open WebUI) can be started with it:

- the Service variables of ``pkg/kubelet/envvars`` (``FromServices``): for every Service with a cluster
  IP, ``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT``, ``<NAME>_SERVICE_PORT_<PORTNAME>`` and the
  Docker-link variables ``<NAME>_PORT=tcp://ip:port``, ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``
  (names upper-cased, ``-`` -> ``_``). As the kubelet does (``getServiceEnvVarMap``), those of the pod's
  own namespace only when ``enableServiceLinks`` is not false, and those of the ``kubernetes`` Service
  of the ``default`` namespace always;
- then the container's ``envFrom`` (ConfigMaps and Secrets, with their prefix; keys that are not valid
  variable names are skipped) and ``env`` in order, later ones winning, with ``valueFrom`` resolved
  (``secretKeyRef``, ``configMapKeyRef``, ``fieldRef``, ``resourceFieldRef``) and ``$(VAR)`` references
  expanded against what is defined so far (``$$`` escapes), as ``third_party/forked/golang/expansion``;
- ``HOSTNAME``: the pod's hostname (``spec.hostname`` or the pod name), which the container runtime sets.

A reference to a missing Secret or ConfigMap key (not ``optional``) raises :class:`ContainerConfigError`
with the kubelet's reason, ``CreateContainerConfigError``.
"""

from __future__ import annotations

import base64
import re

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ContainerConfigError(Exception):
    """What a kubelet reports as ``CreateContainerConfigError`` (the container is never started)."""

    reason = "CreateContainerConfigError"


def env_name(service_name):
    return service_name.upper().replace("-", "_")


def service_env(service):
    """The variables ``pkg/kubelet/envvars.FromServices`` makes for one Service, as ``[(name, value)]``."""
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    if not ip or ip == "None":
        return []
    prefix = env_name(service["metadata"]["name"])
    ports = spec.get("ports") or []
    out = [(prefix + "_SERVICE_HOST", ip)]
    if ports:
        out.append((prefix + "_SERVICE_PORT", str(ports[0]["port"])))
    for port in ports:
        if port.get("name"):
            out.append((prefix + "_SERVICE_PORT_" + env_name(port["name"]), str(port["port"])))
    for i, port in enumerate(ports):
        proto = (port.get("protocol") or "TCP").upper()
        url = "%s://%s:%s" % (proto.lower(), ip, port["port"])
        base = "%s_PORT_%s_%s" % (prefix, port["port"], proto)
        if i == 0:
            out.append((prefix + "_PORT", url))
        out += [(base, url), (base + "_PROTO", proto.lower()), (base + "_PORT", str(port["port"])),
                (base + "_ADDR", ip)]
    return out


def expand(value, defined):
    """``$(VAR)`` expansion as the kubelet does it: defined names are replaced, undefined ones stay as
    written, ``$$`` is a literal ``$``."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    out.append(defined[name] if name in defined else value[i:end + 1])
                    i = end + 1
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)


def _data(kind, obj):
    """Decoded data of a Secret (base64) or ConfigMap. ``kind`` is the kind the pod refers to: the items
    of a list (``list_namespaced_secret``) carry no ``kind`` of their own."""
    if kind == "Secret":
        return dict((k, base64.b64decode(v).decode("utf-8")) for k, v in (obj.get("data") or {}).items())
    return dict(obj.get("data") or {})


def _field(pod, path):
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    return {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }.get(path) or ""


def _resource(container, ref):
    from ansible_collections.haw_icc.llm.plugins.module_utils._icc import quantity

    kind, _dot, name = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return "0"
    divisor = quantity(ref.get("divisor") or "1")
    amount = quantity(value) / divisor
    return str(int(-(-amount // 1)))  # the kubelet rounds up


def container_env(pod, container_name=None, services=(), secrets=(), configmaps=(), master_service=None):
    """``{name: value}`` of the environment a kubelet gives the container ``container_name`` (the first
    one by default) of ``pod``; ``services``, ``secrets`` and ``configmaps`` are the objects of the pod's
    namespace, ``master_service`` the ``kubernetes`` Service of the ``default`` namespace."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    container = next((c for c in containers if c.get("name") == container_name), None) if container_name \
        else (containers[0] if containers else None)
    if container is None:
        raise KeyError("no container %r in pod %s" % (container_name, pod["metadata"].get("name")))
    chosen = {}
    if master_service:  # always, even without service links
        chosen[master_service["metadata"]["name"]] = master_service
    if spec.get("enableServiceLinks", True) is not False:
        chosen.update((s["metadata"]["name"], s) for s in services)  # the namespace's own win
    env = {}
    for name in sorted(chosen):
        env.update(service_env(chosen[name]))
    by_name = {("Secret", s["metadata"]["name"]): s for s in secrets}
    by_name.update({("ConfigMap", c["metadata"]["name"]): c for c in configmaps})

    def lookup(kind, ref):
        obj = by_name.get((kind, ref.get("name")))
        if obj is None:
            if ref.get("optional"):
                return None
            raise ContainerConfigError('%s "%s" not found' % (kind.lower(), ref.get("name")))
        data = _data(kind, obj)
        if "key" in ref:
            if ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise ContainerConfigError("couldn't find key %s in %s %s/%s" % (
                    ref["key"], kind, pod["metadata"].get("namespace"), ref.get("name")))
            return data[ref["key"]]
        return data

    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                data = lookup(kind, source[key]) or {}
                for name, value in data.items():
                    name = (source.get("prefix") or "") + name
                    if _ENV_NAME.match(name):
                        env[name] = value
    for item in container.get("env") or []:
        if "valueFrom" in item:
            src = item["valueFrom"]
            if "secretKeyRef" in src:
                value = lookup("Secret", src["secretKeyRef"])
            elif "configMapKeyRef" in src:
                value = lookup("ConfigMap", src["configMapKeyRef"])
            elif "fieldRef" in src:
                value = _field(pod, src["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in src:
                value = _resource(container, src["resourceFieldRef"])
            else:
                value = ""
            if value is None:
                continue
        else:
            value = expand(str(item.get("value", "")), env)
        env[item["name"]] = value
    env.setdefault("HOSTNAME", spec.get("hostname") or pod["metadata"].get("name"))
    return env
