# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a live engine Deployment runs, read from the object: the one parser of an engine's
command line (``command_settings``, for the plan, status and test_gpu) and the settings of a
Deployment of an engine role (``live_settings``, for scale, change_model and rollbacks)."""

from __future__ import annotations

import json

from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_RESOURCE
from ansible_collections.haw_icc.llm.plugins.module_utils._manifests import SETTINGS

# --- Settings of a live engine Deployment -------------------------------------------------------

_LIVE_FLAGS = {
    "--model": "model", "--model-id": "model", "--served-model-name": "served_model_name",
    "--quantization": "quantization", "-q": "quantization", "--quantize": "quantization",
    "--max-model-len": "max_model_len", "--max-total-tokens": "max_total_tokens",
    "--max-input-tokens": "max_input_tokens", "--tensor-parallel-size": "tensor_parallel", "-tp": "tensor_parallel",
    "--num-shard": "tensor_parallel", "--dtype": "dtype",
    # llama-server: -hf user/model[:quant], --alias, --ctx-size (the context of all its slots)
    "--hf-repo": "model", "-hf": "model", "-hfr": "model", "--alias": "served_model_name", "-a": "served_model_name",
    "--ctx-size": "ctx_size", "-c": "ctx_size",
}
_LIVE_INTS = ("max_model_len", "max_total_tokens", "max_input_tokens", "tensor_parallel", "ctx_size")


def api_key_ref(container, key_envs):
    """``(Secret name, key)`` the container reads its API key from: the ``secretKeyRef`` of the first of
    its env variables named in ``key_envs`` (an engine's VLLM_API_KEY, LLAMA_API_KEY, ...), else ``("",
    "api-key")``."""
    for env in (container or {}).get("env") or []:
        ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
        if env.get("name") in key_envs and ref.get("name"):
            return ref["name"], ref.get("key") or "api-key"
    return "", "api-key"


def command_settings(container):
    """The settings an engine container's command line says (the one parser of it, for the plan,
    status and test_gpu): model (``--model``, ``--model-id``, ``--model=...``, vLLM's ``serve
    <model>`` or llama-server's ``--hf-repo``), served_model_name, quantization, max_model_len,
    max_total_tokens, max_input_tokens, tensor_parallel (1 unless given), dtype and ctx_size; None for
    what the command line does not say."""
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    out = {"model": None, "served_model_name": None, "quantization": "", "max_model_len": None,
           "max_total_tokens": None, "max_input_tokens": None, "tensor_parallel": 1, "dtype": None, "ctx_size": None}
    i = 0
    while i < len(args):
        arg = args[i]
        flag, _sep, inline = arg.partition("=")
        if arg == "serve" and i + 1 < len(args) and out["model"] is None and not args[i + 1].startswith("-"):
            out["model"] = args[i + 1]
            i += 2
            continue
        if flag in _LIVE_FLAGS:
            value = inline if _sep else (args[i + 1] if i + 1 < len(args) else "")
            key = _LIVE_FLAGS[flag]
            out[key] = int(value) if key in _LIVE_INTS and value.isdigit() else value
            i += 1 if _sep else 2
            continue
        i += 1
    if out["served_model_name"] is None:
        out["served_model_name"] = out["model"]
    return out


def live_settings(deployment):
    """What an engine Deployment of an engine role runs, read from the live object: engine
    (the app.kubernetes.io/name label), model, served_model_name, quantization, max_model_len,
    max_total_tokens, max_input_tokens, tensor_parallel, dtype (from the container args),
    gpu_count (the GPU limit), shm_size (the /dev/shm sizeLimit), image, and the Secrets its env refers
    to (hf_token_secret: HF_TOKEN, api_key_secret: VLLM_API_KEY; "" when none), node-independent.
    Returns None for a missing Deployment."""
    if not deployment:
        return None
    meta = deployment.get("metadata") or {}
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or [{}]
    container = containers[0]
    out = {"engine": (meta.get("labels") or {}).get("app.kubernetes.io/name"), "name": meta.get("name"),
           "image": container.get("image"), "gpu_count": 0, "shm_size": None}
    out.update(command_settings(container))
    limits = (container.get("resources") or {}).get("limits") or {}
    try:
        out["gpu_count"] = int(str(limits.get(GPU_RESOURCE, 0)))
    except ValueError:
        out["gpu_count"] = 0
    for vol in spec.get("volumes") or []:
        if vol.get("name") == "dshm" and (vol.get("emptyDir") or {}).get("sizeLimit") is not None:
            out["shm_size"] = str(vol["emptyDir"]["sizeLimit"])
    # The Secrets the engine's env refers to: a reconfigure (scale, change_model) keeps them.
    refs = {}
    for env in container.get("env") or []:
        ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        if ref:
            refs[env.get("name")] = ref
    out["hf_token_secret"] = refs.get("HF_TOKEN") or refs.get("HUGGING_FACE_HUB_TOKEN") or ""
    out["api_key_secret"] = refs.get("VLLM_API_KEY") or ""  # the engine's own variable: _engines.Engine.live
    out["secret_refs"] = refs
    # The role configuration it was applied with (the haw-icc.de/settings annotation), {} without.
    try:
        out["settings"] = json.loads((meta.get("annotations") or {}).get(SETTINGS) or "{}")
    except ValueError:
        out["settings"] = {}
    if not isinstance(out["settings"], dict):
        out["settings"] = {}
    return out
