# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about the HAW Informatik Compute Cloud (ICC) and its GPUs: the single source of truth.

Everything that knows what a V100 can do, how an ICC login maps to a namespace, or which GPU types
exist reads it from here: modules, filters (and through them the roles) and the preflight.
"""

from __future__ import annotations

import re

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError

LOGIN_URL = "https://icc-login.informatik.haw-hamburg.de/"
GPU_RESOURCE = "nvidia.com/gpu"

# GPU types of the ICC. The key is the taint key of the GPU nodes (and what users call GPU_TYPE).
GPU_TYPES = {
    "gpu-tesla-v100": {
        "product": "Tesla-V100-PCIE-16GB",
        "memory_mib": 16384,
        "compute_capability": (7, 0),
        "max_per_node": 4,
    },
    "gpu-tesla-v100s": {
        "product": "Tesla-V100S-PCIE-32GB",
        "memory_mib": 32768,
        "compute_capability": (7, 0),
        "max_per_node": 4,
    },
}

# GPU Feature Discovery labels.
GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_MEMORY = "nvidia.com/gpu.memory"
GFD_COUNT = "nvidia.com/gpu.count"
GFD_CC_MAJOR = "nvidia.com/gpu.compute.major"
GFD_CC_MINOR = "nvidia.com/gpu.compute.minor"

_USER_ID = re.compile(r"^infw([a-z0-9]+)$")
_NAMESPACE = re.compile(r"^w[a-z0-9]+-default$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def gpu_type_info(gpu_type, variable="gpu_type"):
    """Return the facts of an ICC GPU type, refusing unknown ones."""
    try:
        return GPU_TYPES[gpu_type]
    except (KeyError, TypeError):
        raise InputError(variable, gpu_type, "not a GPU type of the ICC",
                         " or ".join(sorted(GPU_TYPES)))


def namespace_from_user_id(user_id, variable="user_id"):
    """``infwXYZ123`` -> ``wXYZ123-default`` (the ICC creates one namespace per login)."""
    text = str(user_id or "").strip().lower()
    match = _USER_ID.match(text)
    if not match:
        raise InputError(variable, user_id, "not an ICC login (infw followed by letters and digits)",
                         "your HAW login such as infwabc123, or set namespace explicitly")
    return "w%s-default" % match.group(1)


def validate_dns_label(value, variable, max_len=63):
    """Kubernetes object names that must be RFC 1123 DNS labels."""
    if not isinstance(value, str) or not _DNS_LABEL.match(value) or len(value) > max_len:
        raise InputError(variable, value, "not a valid Kubernetes name (RFC 1123 label, at most %d "
                         "characters)" % max_len, "lower-case letters, digits and '-', e.g. 'my-vllm'")
    return value


def looks_like_icc_namespace(namespace):
    return bool(_NAMESPACE.match(namespace or ""))


# Kubernetes resource quantities: the one parser used by capacity math and engine checks.
_K8S_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def quantity(value):
    """Kubernetes quantity (``"4"``, ``"500m"``, ``"16Gi"``) -> float; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _K8S_QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError("not a Kubernetes quantity: %r" % (value,))
    return float(match.group(1)) * _SUFFIX[match.group(2)]
