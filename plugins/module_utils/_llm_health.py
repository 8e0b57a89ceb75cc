# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task of haw_icc.llm.llm_health: its options, and ``run(module)`` (the probes, the load, the
wait while the model loads). Run by the module, or in-process by its action plugin (which prints a
progress line while it waits)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ClusterUnreachableError, InputError, ProbeError
from ansible_collections.haw_icc.llm.plugins.module_utils._health import Probe, load, wait_for
from ansible_collections.haw_icc.llm.plugins.module_utils._openai import OpenAIClient

# How the options depend on each other (AnsibleModule's keywords).
RULES = dict(mutually_exclusive=[("base_url", "service")], required_one_of=[("base_url", "service")])


def argument_spec():
    return connection_spec(
        drop=("api_key",),
        base_url=dict(type="str"),
        namespace=dict(type="str"),
        service=dict(type="str"),
        port=dict(type="int", default=8000),
        model=dict(type="str"),
        question=dict(type="str", default="What is the capital of Germany? Answer in one word."),
        max_tokens=dict(type="int", default=32, no_log=False),
        llm_api_key=dict(type="str", no_log=True, aliases=["api_key"],
                         deprecated_aliases=[dict(name="api_key", version="1.0.0", collection_name="haw_icc.llm")]),
        api_key_secret=dict(type="str", no_log=False),
        api_key_secret_key=dict(type="str", default="api-key", no_log=False),
        stream=dict(type="bool", default=True),
        metrics=dict(type="bool", default=False),
        requests=dict(type="int", default=0),
        concurrency=dict(type="int", default=1),
        timeout=dict(type="int", default=60),
        wait_timeout=dict(type="int", default=0),
        sleep=dict(type="int", default=5),
    )


def _check_inputs(params):
    for name, low in (("max_tokens", 1), ("timeout", 1), ("requests", 0), ("concurrency", 1),
                      ("wait_timeout", 0), ("sleep", 0), ("port", 1)):
        if params[name] < low:
            raise InputError(name, params[name], "must be at least %d" % low, "a number >= %d" % low)


def secret_value(kube, namespace, name, key):
    """The decoded value of ``key`` in the Secret ``namespace/name``."""
    import base64
    import json

    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

    try:
        secret = json.loads(kube.get_raw("/api/v1/namespaces/%s/secrets/%s" % (namespace, name)))
    except ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise
        raise InputError("api_key_secret", name, "no Secret of that name in namespace %s" % namespace,
                         "the name of the Secret that holds the engine's API key")
    data = secret.get("data") or {}
    if key not in data:
        raise InputError("api_key_secret", name, "the Secret has no key %r (it has %s)" % (
            key, ", ".join(sorted(data)) or "no keys"), "a Secret whose key %r holds the API key" % key)
    return base64.b64decode(data[key]).decode("utf-8")


def run(module, on_retry=None):
    """The checks (and the load), retried until they pass or wait_timeout; ``on_retry(elapsed,
    error)`` is called after each failed attempt that is retried."""
    params = module.params
    _check_inputs(params)
    key = {"value": params["llm_api_key"]}

    def llm_key(kube, namespace):
        """The LLM server's key: llm_api_key, or read once from api_key_secret."""
        if key["value"] is None and params["api_key_secret"]:
            key["value"] = secret_value(kube, namespace, params["api_key_secret"], params["api_key_secret_key"])
            module.no_log_values.add(key["value"])
        return key["value"]

    def checks(url):
        client = OpenAIClient(url, key["value"], timeout=params["timeout"])
        probe = Probe(client, params["model"], params["question"], params["max_tokens"],
                      params["stream"], params["metrics"])
        try:
            result = probe.run()
        except ProbeError as exc:
            exc.details["last_observation"] = dict(checks=probe.checks, error=exc.message)
            exc.details["checks"] = probe.checks
            raise
        if params["requests"]:
            result["load"] = load(client, result["model"], params["question"], params["max_tokens"],
                                  params["requests"], params["concurrency"])
        return result

    def attempt():
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

        kube = None
        if not params["base_url"] or (params["api_key_secret"] and key["value"] is None):
            # This module takes no Kubernetes token: its key is the LLM server's.
            kube = build_client(**module.connection_params())
            llm_key(kube, params["namespace"] or kube.namespace or "default")
        if params["base_url"]:
            return checks(params["base_url"])
        from ansible_collections.haw_icc.llm.plugins.module_utils._portforward import ServiceTunnel

        namespace = params["namespace"] or kube.namespace or "default"
        tunnel = ServiceTunnel(kube, namespace, params["service"], params["port"])
        try:
            with tunnel as url:
                try:
                    result = checks(url)
                except ProbeError as exc:
                    raise tunnel.explain(exc)
        except ClusterUnreachableError as exc:
            exc.message = "While reaching Service %s/%s: %s" % (namespace, params["service"], exc.message)
            raise
        result.update(pod=tunnel.pod, node=tunnel.node)
        return result

    result = wait_for(attempt, params["wait_timeout"], params["sleep"], on_retry=on_retry)
    result["changed"] = False
    return result
