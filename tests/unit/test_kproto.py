"""The protobuf PodList reader (_kproto) on hand-encoded messages. Its agreement with the JSON
encoding of a real API server is checked in tests/integration/test_gpu_capacity.py."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import pod_request
from ansible_collections.haw_icc.llm.plugins.module_utils._kproto import (
    MAGIC,
    ProtobufError,
    list_continue,
    pod_list,
)


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def ld(number, payload):
    payload = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number, value):
    return varint(number << 3) + varint(value)


def rmap(key, qty):
    return ld(1, key) + ld(2, ld(1, qty))


def container(name, requests=(), limits=(), restart=None):
    res = b"".join(ld(2, rmap(k, v)) for k, v in requests) + b"".join(ld(1, rmap(k, v)) for k, v in limits)
    body = ld(1, name) + ld(2, "img:1") + ld(8, res)
    if restart:
        body += ld(24, restart)
    return body


def pod(ns, node, containers=(), inits=(), overhead=None):
    meta = ld(1, "p") + ld(3, ns) + ld(12, ld(1, "manager") + ld(7, b"x" * 300))  # managedFields-like noise
    spec = b"".join(ld(2, c) for c in containers) + ld(10, node) + vi(11, 1) + b"".join(ld(20, c) for c in inits)
    if overhead:
        spec += ld(32, rmap("nvidia.com/gpu", overhead))
    return ld(1, meta) + ld(2, spec) + ld(3, ld(1, "Running"))


def envelope(items, cont=None):
    listmeta = ld(2, "123") + (ld(3, cont) if cont else b"")
    raw = ld(1, listmeta) + b"".join(ld(2, i) for i in items)
    return MAGIC + ld(1, ld(1, "v1") + ld(2, "PodList")) + ld(2, raw) + ld(4, "application/vnd.kubernetes.protobuf")


def test_decodes_gpu_requests_and_skips_the_rest():
    gpu = container("a", requests=[("cpu", "100m"), ("nvidia.com/gpu", "2")])
    cpu = container("b", requests=[("cpu", "1")])
    data = envelope([
        pod("ns1", "n1", [gpu, cpu]),
        pod("ns2", "n2", [cpu]),                                            # skipped undecoded
        pod("ns3", "n3", [container("c", limits=[("nvidia.com/gpu", "1")])], overhead="1"),
        pod("ns4", "n4", [gpu], inits=[container("s", limits=[("nvidia.com/gpu", "1")], restart="Always"),
                                       container("i", requests=[("nvidia.com/gpu", "4")])]),
    ], cont="next-page")
    pods, cont = pod_list(data, "nvidia.com/gpu")
    assert cont == "next-page" and list_continue(data) == "next-page"
    got = [(p["metadata"]["namespace"], p["spec"]["nodeName"], pod_request(p)) for p in pods]
    assert got == [("ns1", "n1", 2), ("ns3", "n3", 2), ("ns4", "n4", 5)]
    everything, _c = pod_list(data, "nvidia.com/gpu", skip_without_resource=False)
    assert [pod_request(p) for p in everything] == [2, 0, 2, 5]


def test_last_page_has_no_continue():
    data = envelope([pod("ns", "n", [container("a")])])
    assert pod_list(data, "nvidia.com/gpu") == ([], None) and list_continue(data) is None


TRUNCATED = MAGIC + ld(2, ld(2, pod("ns", "n", [container("a", requests=[("nvidia.com/gpu", "1")])])))[:-10]


@pytest.mark.parametrize("data", [b"{\"kind\": \"PodList\"}", MAGIC + ld(1, "x"), TRUNCATED])
def test_refuses_what_it_cannot_read(data):
    with pytest.raises((ProtobufError, IndexError)):
        pod_list(data, "nvidia.com/gpu")
