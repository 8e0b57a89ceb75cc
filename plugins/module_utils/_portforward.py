# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach a Service's pod through the API server, without kubectl and without the user's help.

``ServiceTunnel`` resolves a Service to one Ready pod and its target port, listens on a free
127.0.0.1 port, and relays every TCP connection made to it through its own Kubernetes port-forward
stream (``pods/portforward``, the same API ``kubectl port-forward`` uses). It closes everything on
exit. We use port-forward rather than the API server's service proxy because the proxy needs the
API server to reach pod IPs directly, which student kubeconfigs may not be allowed (services/proxy)
and which the ICC's network setup does not promise; ``pods/portforward`` is part of what a
namespace owner may do.
"""

from __future__ import annotations

import select
import socket
import threading

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError


def pod_ready(pod):
    """Running, not being deleted, and with condition Ready=True (a pod as JSON dict or typed object)."""
    if isinstance(pod, dict):
        status = pod.get("status") or {}
        if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
            return False
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    status = pod.status
    if not status or status.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))


def resolve_service(kube, namespace, service, port):
    """Return (pod, pod_port) of a Ready pod behind a Service port; ``pod`` is the pod as a dict."""
    import json

    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        svc = json.loads(kube.get_raw("/api/v1/namespaces/%s/services/%s" % (namespace, service)))
    except ApiException as exc:
        if exc.status == 404:
            raise ProbeError("Service %s/%s does not exist." % (namespace, service),
                             "Check service and namespace; list them with kubectl get services -n %s." % namespace)
        raise
    spec = svc.get("spec") or {}
    target = None
    for sp in spec.get("ports") or []:
        if sp.get("port") == port or sp.get("name") == str(port):
            target = sp.get("targetPort", sp.get("port"))
            break
    if target is None:
        raise ProbeError("Service %s/%s has no port %s." % (namespace, service, port),
                         "Use one of its ports: %s." % ", ".join(
                             str(p.get("port")) for p in spec.get("ports") or []))
    selector = spec.get("selector") or {}
    if not selector:
        raise ProbeError("Service %s/%s has no pod selector." % (namespace, service))
    label_selector = ",".join("%s=%s" % kv for kv in sorted(selector.items()))
    pods = json.loads(kube.get_raw("/api/v1/namespaces/%s/pods" % namespace,
                                   {"labelSelector": label_selector})).get("items") or []
    ready = sorted((p for p in pods if pod_ready(p)), key=lambda p: p["metadata"]["name"])
    if not ready:
        raise ProbeError("No Ready pod behind Service %s/%s (%d pods match its selector)."
                         % (namespace, service, len(pods)),
                         "Wait for the rollout, or look at the pods with the logs playbook.")
    pod = ready[0]
    if isinstance(target, str) and not target.isdigit():
        named = [cp.get("containerPort") for c in pod["spec"].get("containers") or []
                 for cp in c.get("ports") or [] if cp.get("name") == target]
        if not named:
            raise ProbeError("Pod %s has no container port named %s." % (pod["metadata"]["name"], target))
        return pod, named[0]
    return pod, int(target)


def error_text(exc):
    """The API server's own message of a refused port-forward (its Status JSON, after the
    handshake's headers), else the exception as text."""
    import json
    import re

    text = str(exc)
    match = re.search(r'"message":("(?:[^"\\]|\\.)*")', text)
    if match:
        try:
            status = re.search(r"Handshake status (\d+)", text)
            return "%s (HTTP %s)" % (json.loads(match.group(1)), status.group(1)) if status else json.loads(match.group(1))
        except ValueError:
            pass
    return text


class ServiceTunnel(object):
    """Context manager: ``with ServiceTunnel(kube, ns, svc, 8000) as base_url: ...``."""

    def __init__(self, kube, namespace, service, port, pod=None, pod_port=None):
        self.kube = kube
        self.namespace = namespace
        self.service = service
        self.port = port
        self.pod = pod
        self.pod_port = pod_port
        self.node = None
        self._listener = None
        self._closing = threading.Event()
        self._threads = []
        self.errors = []

    def __enter__(self):
        if self.pod is None:
            pod, self.pod_port = resolve_service(self.kube, self.namespace, self.service, self.port)
            self.pod, self.node = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName")
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        accept = threading.Thread(target=self._accept_loop, name="haw-icc-pf-accept")
        accept.daemon = True
        accept.start()
        self._threads.append(accept)
        return "http://127.0.0.1:%d" % self._listener.getsockname()[1]

    def __exit__(self, *exc_info):
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()
        return False

    def explain(self, exc):
        """Add what the port-forward itself reported (if anything) to a ProbeError raised while the
        tunnel was open: a pod whose node is gone answers with a reset connection, and only the API
        server's refusal of the port-forward says why."""
        if not self.errors:
            return exc
        err = str(self.errors[0]).strip()
        err = err if len(err) < 300 else err[:297] + "..."
        exc.message = "%s%s The port-forward to pod %s/%s on node %s failed: %s." % (
            exc.message, "" if exc.message.endswith(".") else ".", self.namespace, self.pod, self.node or "-", err)
        # The API server looks up the pod's node to reach its kubelet; the node is gone (404, in
        # its words 'pods "<node>" not found') or its kubelet does not answer.
        if self.node and "\"%s\" not found" % self.node in err:
            exc.hint = ("Node %s of the pod no longer exists or cannot be reached: Kubernetes deletes such a pod "
                        "within about a minute and the Deployment starts a new one on another node "
                        "(status.yml shows it). Try again then." % self.node)
        exc.details["tunnel_errors"] = [str(e)[:300] for e in self.errors[:3]]
        return exc

    def _accept_loop(self):
        while not self._closing.is_set():
            try:
                client, _addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            relay = threading.Thread(target=self._relay, args=(client,), name="haw-icc-pf-relay")
            relay.daemon = True
            relay.start()
            self._threads.append(relay)

    def _relay(self, client):
        pf = None
        try:
            pf = self.kube.portforward(self.namespace, self.pod, self.pod_port)
            remote = pf.socket(self.pod_port)
            remote.setblocking(True)
            pair = {client: remote, remote: client}
            while not self._closing.is_set():
                readable, _w, _x = select.select(list(pair), [], [], 0.2)
                done = False
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        done = True
                        break
                    pair[sock].sendall(data)
                if done:
                    break
            err = pf.error(self.pod_port)
            if err:
                self.errors.append(err)
        except Exception as exc:  # noqa: BLE001 - relay threads must not die silently
            self.errors.append(error_text(exc))
        finally:
            client.close()
            if pf is not None:
                try:
                    pf.close()
                except Exception:  # noqa: BLE001
                    pass
