# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Just enough of the Kubernetes protobuf encoding to read GPU requests from a PodList.

The API server encodes a list of 10,000 pods as protobuf several times faster than as JSON and about
a third of the size, and this reader skips everything gpu_capacity does not need (metadata, status,
env, volumes, ...) without decoding it. Field numbers are those of ``k8s.io/api/core/v1/generated.proto``
(stable: protobuf field numbers are never reused). ``_capacity`` falls back to JSON if the server does
not answer in protobuf.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"

# Field numbers (k8s.io/api/core/v1/generated.proto, k8s.io/apimachinery .../runtime/generated.proto,
# .../apis/meta/v1/generated.proto).
UNKNOWN_RAW = 2
LIST_META, LIST_ITEMS = 1, 2
LISTMETA_CONTINUE = 3
POD_METADATA, POD_SPEC = 1, 2
META_NAMESPACE = 3
SPEC_CONTAINERS, SPEC_NODE_NAME, SPEC_INIT_CONTAINERS, SPEC_OVERHEAD = 2, 10, 20, 32
CONTAINER_RESOURCES, CONTAINER_RESTART_POLICY = 8, 24
RESOURCES_LIMITS, RESOURCES_REQUESTS = 1, 2


class ProtobufError(ValueError):
    pass


def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(buf, start=0, end=None):
    """Yield (field number, wire type, value or (start, end) of a length-delimited value)."""
    pos = start
    end = len(buf) if end is None else end
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError("unsupported wire type %d" % wire)
    if pos != end:
        raise ProtobufError("truncated message")


def _string(buf, span):
    return buf[span[0]:span[1]].decode("utf-8")


def _resource_map(buf, span, resource):
    """The Quantity string of ``resource`` in a map<string, Quantity> entry, or None."""
    key = value = None
    for number, wire, val in fields(buf, span[0], span[1]):
        if wire != 2:
            continue
        if number == 1:
            key = _string(buf, val)
        elif number == 2:
            value = val
    if key != resource or value is None:
        return None
    for number, wire, val in fields(buf, value[0], value[1]):
        if number == 1 and wire == 2:
            return _string(buf, val)
    return None


def _container(buf, span, resource):
    """(request or limit quantity string or None, restartPolicy or None) of a Container."""
    req = lim = policy = None
    for number, wire, val in fields(buf, span[0], span[1]):
        if wire != 2:
            continue
        if number == CONTAINER_RESOURCES:
            for rnum, rwire, rval in fields(buf, val[0], val[1]):
                if rwire != 2:
                    continue
                if rnum == RESOURCES_REQUESTS:
                    req = _resource_map(buf, rval, resource) or req
                elif rnum == RESOURCES_LIMITS:
                    lim = _resource_map(buf, rval, resource) or lim
        elif number == CONTAINER_RESTART_POLICY:
            policy = _string(buf, val)
    return (req if req is not None else lim), policy


def pod_summary(buf, span, resource):
    """A pod reduced to the dict shape ``_capacity.pod_request`` reads, plus nodeName and namespace."""
    spec = {"containers": [], "initContainers": []}
    namespace = None
    for number, wire, val in fields(buf, span[0], span[1]):
        if wire != 2:
            continue
        if number == POD_METADATA:
            for mnum, mwire, mval in fields(buf, val[0], val[1]):
                if mnum == META_NAMESPACE and mwire == 2:
                    namespace = _string(buf, mval)
        elif number == POD_SPEC:
            for snum, swire, sval in fields(buf, val[0], val[1]):
                if swire != 2:
                    continue
                if snum == SPEC_CONTAINERS or snum == SPEC_INIT_CONTAINERS:
                    qty, policy = _container(buf, sval, resource)
                    entry = {"resources": {"requests": {resource: qty}} if qty is not None else {}}
                    if policy:
                        entry["restartPolicy"] = policy
                    spec["containers" if snum == SPEC_CONTAINERS else "initContainers"].append(entry)
                elif snum == SPEC_NODE_NAME:
                    spec["nodeName"] = _string(buf, sval)
                elif snum == SPEC_OVERHEAD:
                    qty = _resource_map(buf, sval, resource)
                    if qty is not None:
                        spec["overhead"] = {resource: qty}
    return {"metadata": {"namespace": namespace}, "spec": spec}


def _raw_span(buf):
    if buf[:4] != MAGIC:
        raise ProtobufError("not a Kubernetes protobuf message")
    for number, wire, val in fields(buf, 4):
        if number == UNKNOWN_RAW and wire == 2:
            return val
    raise ProtobufError("no raw object in the envelope")


def list_continue(data):
    """The continue token of a protobuf-encoded list (ListMeta comes first), or None."""
    buf = bytes(data)
    raw = _raw_span(buf)
    for number, wire, val in fields(buf, raw[0], raw[1]):
        if number == LIST_META and wire == 2:
            for mnum, mwire, mval in fields(buf, val[0], val[1]):
                if mnum == LISTMETA_CONTINUE and mwire == 2:
                    return _string(buf, mval) or None
            return None
        if number == LIST_ITEMS:
            return None
    return None


def pod_list(data, resource, skip_without_resource=True):
    """(pods as reduced dicts, continue token or None) of a protobuf-encoded PodList response.

    With ``skip_without_resource`` a pod whose encoding does not contain the resource name at all
    (most pods: no GPU) is skipped with one C-speed byte search instead of being decoded.
    """
    buf = bytes(data)
    needle = resource.encode("utf-8")
    raw = _raw_span(buf)
    pods = []
    cont = None
    for number, wire, val in fields(buf, raw[0], raw[1]):
        if wire != 2:
            continue
        if number == LIST_ITEMS:
            if skip_without_resource and buf.find(needle, val[0], val[1]) < 0:
                continue
            pods.append(pod_summary(buf, val, resource))
        elif number == LIST_META:
            for mnum, mwire, mval in fields(buf, val[0], val[1]):
                if mnum == LISTMETA_CONTINUE and mwire == 2:
                    cont = _string(buf, mval) or None
    return pods, cont
