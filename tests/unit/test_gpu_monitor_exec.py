"""gpu_monitor_sample's exec: a refused exec (the API server answers the websocket handshake with 403)
is a PermissionDeniedError naming the namespace, so the module fails instead of writing a CSV of
errors for another student's namespace."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor as gm
from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import (
    AuthenticationError, IccError, PermissionDeniedError)


class Kube(object):
    """Answers every API call with the given ApiException."""

    def __init__(self, exc):
        self.exc = exc
        self.core = type("Core", (), {"connect_get_namespaced_pod_exec": None})()

    def call(self, *args, **kwargs):
        raise self.exc


def refused(status, reason):
    exc = ApiException(status=status, reason=reason)
    exc.body = None
    return exc


@pytest.mark.parametrize("status,reason,error", [
    (0, "Handshake status 403 Forbidden", PermissionDeniedError),
    (403, "Forbidden", PermissionDeniedError),
    (0, "Handshake status 401 Unauthorized", AuthenticationError),
])
def test_refused_exec_is_a_typed_error_naming_the_namespace(status, reason, error):
    sampler = gm.KubeSampler(Kube(refused(status, reason)), None, "wstu002-default")
    with pytest.raises(error) as info:
        sampler.exec_in("vllm-1", ["nvidia-smi"])
    if error is PermissionDeniedError:
        assert "namespace wstu002-default" in info.value.message and "icc_namespace" in info.value.hint


def test_other_exec_failures_stay_per_sample_errors():
    sampler = gm.KubeSampler(Kube(refused(500, "Internal Server Error")), None, "wstu002-default")
    with pytest.raises(IccError) as info:
        sampler.exec_in("vllm-1", ["nvidia-smi"])
    assert not isinstance(info.value, (PermissionDeniedError, AuthenticationError)) and "HTTP 500" in info.value.message
