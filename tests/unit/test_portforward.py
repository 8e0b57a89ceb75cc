"""What llm_health says when the port-forward to the engine pod is refused (pure logic)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError
from ansible_collections.haw_icc.llm.plugins.module_utils._portforward import ServiceTunnel, error_text

# What kubernetes.stream raises when the API server refuses the port-forward of a pod whose node is gone.
REFUSED = ("(0)\nReason: Handshake status 404 Not Found -+-+- {'audit-id': 'x', 'content-type': 'application/json'} "
           "-+-+- {\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
           "\"message\":\"pods \\\"gpu-v100-1\\\" not found\",\"reason\":\"NotFound\",\"code\":404}")


def test_error_text_is_the_api_servers_message():
    assert error_text(Exception(REFUSED)) == 'pods "gpu-v100-1" not found (HTTP 404)'
    assert error_text(OSError("connection reset")) == "connection reset"


def tunnel(errors, node="gpu-v100-1"):
    t = ServiceTunnel(None, "wabc123-default", "vllm", 8000, pod="vllm-1", pod_port=8000)
    t.node = node
    t.errors = errors
    return t


def test_explain_names_pod_node_and_what_happens_when_the_node_is_gone():
    exc = tunnel([error_text(Exception(REFUSED))]).explain(ProbeError("GET /health failed: connection reset"))
    assert exc.message == ('GET /health failed: connection reset. The port-forward to pod wabc123-default/vllm-1 on node '
                           'gpu-v100-1 failed: pods "gpu-v100-1" not found (HTTP 404).')
    assert "Node gpu-v100-1 of the pod no longer exists" in exc.hint and "status.yml" in exc.hint
    assert exc.details["tunnel_errors"] == ['pods "gpu-v100-1" not found (HTTP 404)']


def test_explain_leaves_errors_alone_when_the_port_forward_worked():
    exc = ProbeError("The server lists no model in /v1/models.", "wait")
    assert tunnel([]).explain(exc) is exc and exc.message == "The server lists no model in /v1/models." and exc.hint == "wait"
    other = tunnel(["error upgrading connection: timeout"]).explain(ProbeError("GET /health failed."))
    assert other.message.endswith("failed: error upgrading connection: timeout.") and other.hint is None
