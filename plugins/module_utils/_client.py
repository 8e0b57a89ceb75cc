# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access for haw_icc.llm: one client factory, one place that maps failures to
typed errors with advice (VPN, expired token, missing rights)."""

from __future__ import annotations

import os
import traceback

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import (
    AuthenticationError,
    ClusterUnreachableError,
    KubeconfigError,
    PermissionDeniedError,
)
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import LOGIN_URL

try:
    import kubernetes
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    import urllib3

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the module wrapper
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]
        status = None


class Kube(object):
    """A configured Kubernetes API client plus the server and namespace it points at."""

    def __init__(self, api_client, timeout, namespace=None, context=None):
        self.api_client = api_client
        self.timeout = timeout
        self.namespace = namespace
        self.context = context
        self._apis = {}

    # The typed API classes are created on first use: importing CoreV1Api costs seconds of CPU with
    # the pydantic-based clients (kubernetes >= 32), which a module that only needs ``get_raw`` avoids.
    def _api(self, name):
        if name not in self._apis:
            self._apis[name] = getattr(kubernetes.client, name)(self.api_client)
        return self._apis[name]

    @property
    def core(self):
        return self._api("CoreV1Api")

    @property
    def apps(self):
        return self._api("AppsV1Api")

    @property
    def authz(self):
        return self._api("AuthorizationV1Api")

    @property
    def server(self):
        return self.api_client.configuration.host

    def _serialize(self, method, path, params, headers):
        """(method, url, headers) of a request, with the kubeconfig's authentication applied."""
        method, url, hdrs, _body, _post = self.api_client.param_serialize(
            method, path, query_params=params, header_params=headers, auth_settings=["BearerToken"])
        return method, url, hdrs

    def get_raw(self, path, query=None, accept="application/json"):
        """GET ``path`` (e.g. ``/api/v1/pods``) and return the raw body bytes, errors mapped like
        ``call``. No typed API class and no model objects are involved."""
        return self.request_raw("GET", path, query, accept=accept)

    def request_raw(self, method, path, query=None, body=None, content_type=None, accept="application/json"):
        """``method`` ``path`` with ``body`` and return the raw response body bytes, errors mapped like
        ``call``. The client serializes a dict body as JSON; a str body is sent as is (an
        ``application/apply-patch+yaml`` body must be a str)."""
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        client = self.api_client

        def request(_request_timeout=None):
            if hasattr(client, "param_serialize"):  # kubernetes >= 31 (openapi-generator 7)
                method_, url, hdrs = self._serialize(method, path, params, headers)
                resp = client.call_api(method_, url, header_params=hdrs, body=body, _request_timeout=_request_timeout)
                data = resp.read()
                if not 200 <= resp.status <= 299:
                    raise ApiException(http_resp=resp)
                return data
            resp = client.call_api(path, method, query_params=params, header_params=headers, body=body,
                                   auth_settings=["BearerToken"], _preload_content=False,
                                   _return_http_data_only=True, _request_timeout=_request_timeout)
            return resp.data

        request.__name__ = "%s %s" % (method, path)
        return self.call(request)

    def portforward(self, namespace, pod, port):
        """A ``kubernetes.stream`` PortForward to ``port`` of ``pod`` (``pods/portforward``), opened
        without CoreV1Api, whose import costs more CPU than the whole rest of a module run."""
        from kubernetes.stream import portforward, ws_client

        path = "/api/v1/namespaces/%s/pods/%s/portforward" % (namespace, pod)
        if not hasattr(self.api_client, "param_serialize"):  # pragma: no cover - kubernetes < 31
            return self.call(portforward, self.core.connect_get_namespaced_pod_portforward, pod, namespace,
                             ports=str(port))

        def request(_request_timeout=None):
            method, url, hdrs = self._serialize("GET", path, [("ports", str(port))], {})
            return ws_client.portforward_call(self.api_client.configuration, method, url, headers=hdrs)

        request.__name__ = "port-forward to %s/%s:%s" % (namespace, pod, port)
        return self.call(request)

    def call(self, func, *args, **kwargs):
        """Call an API method with the bounded timeout, mapping failures to typed errors."""
        kwargs.setdefault("_request_timeout", self.timeout)
        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            raise_for_api_exception(exc, self.server, what=getattr(func, "__name__", "request"))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self.server, exc)


def namespace_read_failure(namespace, kubeconfig, context, exc):
    """The one message for a namespace that these credentials cannot read (the plan, status, ...)."""
    shown = kubeconfig if isinstance(kubeconfig, str) and kubeconfig else "(default)" if not kubeconfig else "(a dictionary)"
    return ("Cannot read namespace %s with kubeconfig %s%s: %s Is icc_namespace your own namespace (w<id>-default) "
            "and the kubeconfig yours? Nothing was changed."
            % (namespace, shown, " context %s" % context if context else "", getattr(exc, "message", None) or str(exc)))


def unreachable(server, exc):
    return ClusterUnreachableError(
        "Cannot reach the Kubernetes API server at %s (%s)." % (server, _short(exc)),
        "Check your network; from outside the HAW network the ICC needs the HAW VPN. "
        "If the server address is wrong, download a fresh kubeconfig at %s." % LOGIN_URL)


def raise_for_api_exception(exc, server, what="request"):
    status = getattr(exc, "status", None)
    if status == 401:
        raise AuthenticationError(
            "The API server at %s rejected your credentials (HTTP 401 Unauthorized)." % server,
            "Your ICC token has probably expired: log in again at %s, download the new "
            "config.txt and run the login playbook (haw_icc.llm.login) with it." % LOGIN_URL)
    if status == 403:
        raise PermissionDeniedError(
            "The API server refused %s (HTTP 403 Forbidden): %s" % (what, api_message(exc)),
            "Use a namespace your ICC account owns (w<id>-default), or ask the ICC admins for "
            "the missing right.")
    raise exc


def api_message(exc):
    """The API server's own message of a failed request."""
    import json

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return getattr(exc, "reason", None) or str(exc)


def _short(exc):
    text = str(getattr(exc, "reason", None) or exc)
    return text if len(text) < 300 else text[:297] + "..."


def load_kubeconfig_dict(kubeconfig):
    """Return the kubeconfig (path or dict) as a dict, or raise KubeconfigError."""
    if isinstance(kubeconfig, dict):
        return kubeconfig
    from ansible_collections.haw_icc.llm.plugins.module_utils._kubeconfig import read_kubeconfig

    return read_kubeconfig(kubeconfig, "kubeconfig")


def default_kubeconfig_path():
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return os.path.expanduser("~/.kube/config")


def build_client(kubeconfig=None, context=None, host=None, api_key=None, validate_certs=None,
                 ca_cert=None, request_timeout=20, **_ignored):
    """Build a ``Kube`` from kubernetes.core-style connection options."""
    if not HAS_KUBERNETES:  # pragma: no cover
        raise KubeconfigError("The Python 'kubernetes' client is not installed.",
                              "pip install -r requirements.txt")
    kc = None
    namespace = None
    if kubeconfig is not None or not (host and api_key):
        kc = load_kubeconfig_dict(kubeconfig if kubeconfig is not None else default_kubeconfig_path())
        try:
            loader = kubernetes.config.kube_config.KubeConfigLoader(
                config_dict=kc, active_context=context)
            configuration = kubernetes.client.Configuration()
            loader.load_and_set(configuration)
        except ConfigException as exc:
            raise KubeconfigError("The kubeconfig cannot be used: %s." % exc,
                                  "Check 'context' against the contexts in the file, or download "
                                  "a fresh kubeconfig at %s." % LOGIN_URL)
        ctx = loader.current_context or {}
        context = ctx.get("name", context)
        namespace = (ctx.get("context") or {}).get("namespace")
    else:
        configuration = kubernetes.client.Configuration()
    if host:
        configuration.host = host
    if api_key:
        configuration.api_key = {"authorization": "Bearer %s" % api_key}
    if validate_certs is not None:
        configuration.verify_ssl = validate_certs
    if ca_cert:
        configuration.ssl_ca_cert = ca_cert
    configuration.retries = 0
    return Kube(kubernetes.client.ApiClient(configuration), request_timeout,
                namespace=namespace, context=context)
