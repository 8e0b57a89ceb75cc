# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A command in a container of a pod, through the API server's ``pods/exec`` (what ``kubectl exec``
uses): its output and exit code, with the clear errors of ``_errors`` for 401 and 403. Used by
``pod_exec`` (test_gpu) and ``gpu_monitor_sample``."""

from __future__ import annotations

import json

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import (
    AuthenticationError, IccError, PermissionDeniedError)


def exit_code(status_text):
    """(exit code or None, message) from the exec error channel (a v1 Status as JSON)."""
    if not status_text:
        return 0, ""
    try:
        status = json.loads(status_text)
    except ValueError:
        return None, status_text
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), status.get("message", "")
            except (TypeError, ValueError):
                break
    return None, status.get("message") or status_text


def run(kube, namespace, pod, argv, container=None, timeout=60, hint_vars="icc_namespace"):
    """Run ``argv`` in ``pod``; returns ``(stdout, stderr, rc)`` (rc None when the command did not
    start: the error channel's message is then in stderr). ``hint_vars``: the variables a refusal
    names."""
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException
    from kubernetes.stream import stream

    kwargs = dict(command=list(argv), stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    if container:
        kwargs["container"] = container
    try:
        resp = kube.call(stream, kube.core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except ApiException as exc:
        text = "%s %s" % (exc.reason or "", exc.body or "")
        # A refused exec comes as a failed websocket handshake (status 0, "Handshake status 403").
        if exc.status == 403 or "Handshake status 403" in text:
            raise PermissionDeniedError(
                "The API server refused exec into pod %s in namespace %s (HTTP 403 Forbidden)." % (pod, namespace),
                "Use a namespace your ICC account owns (%s w<id>-default) with its own kubeconfig." % hint_vars)
        if exc.status == 401 or "Handshake status 401" in text:
            raise AuthenticationError("The API server rejected the credentials for exec into pod %s (HTTP 401)."
                                      % pod, "Download a fresh kubeconfig and run haw_icc.llm.login.")
        raise IccError("exec into pod %s failed (HTTP %s): %s" % (pod, exc.status, (exc.body or exc.reason or "")[:300]))
    try:
        resp.run_forever(timeout=timeout)
        out = resp.read_stdout() or ""
        err = resp.read_stderr() or ""
        code, message = exit_code(resp.read_channel(3))
        if resp.is_open():
            raise IccError("%s in pod %s did not finish within %s s." % (argv[0], pod, timeout))
    finally:
        resp.close()
    if code is None:
        return out, (err + message).strip(), None
    return out, err, code
