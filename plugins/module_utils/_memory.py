# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory-fit estimate of the plan: whether a model's weights and KV cache fit the GPUs (pure),
and the table of known models (parameters, layers, heads, KV heads, head size) it and the
tensor-parallel rule of ``_engine`` read."""

from __future__ import annotations

import re

from ansible_collections.haw_icc.llm.plugins.module_utils import _model_facts
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_TYPES

# --- Memory fit (preflight estimate) -----------------------------------------------------------

# The fallback when the Hub cannot be read (offline, a mirror that is down): known models'
# parameters (billions), layers, attention heads and KV heads (for the tensor-parallel rule) and head
# size (for the KV cache per token), from each model's config.json.
# Matched by a regular expression on the lower-case model id; the first match wins.
MODEL_TABLE = (
    (r"mixtral-8x7b", {"params_b": 46.7, "layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128}),
    (r"mistral-7b", {"params_b": 7.24, "layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128}),
    (r"llama-2-7b", {"params_b": 6.74, "layers": 32, "heads": 32, "kv_heads": 32, "head_dim": 128}),
    (r"llama-2-13b", {"params_b": 13.0, "layers": 40, "heads": 40, "kv_heads": 40, "head_dim": 128}),
    (r"llama-2-70b", {"params_b": 69.0, "layers": 80, "heads": 64, "kv_heads": 8, "head_dim": 128}),
    (r"llama-3(\.\d)?-8b", {"params_b": 8.03, "layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128}),
    (r"llama-3(\.\d)?-70b", {"params_b": 70.6, "layers": 80, "heads": 64, "kv_heads": 8, "head_dim": 128}),
    (r"tinyllama.*1\.1b", {"params_b": 1.1, "layers": 22, "heads": 32, "kv_heads": 4, "head_dim": 64}),
    (r"smollm2-135m", {"params_b": 0.135, "layers": 30, "heads": 9, "kv_heads": 3, "head_dim": 64}),
    (r"smollm2-360m", {"params_b": 0.362, "layers": 32, "heads": 15, "kv_heads": 5, "head_dim": 64}),
    (r"smollm2-1\.7b", {"params_b": 1.71, "layers": 24, "heads": 32, "kv_heads": 32, "head_dim": 64}),
    (r"qwen2\.5-(coder-)?3b", {"params_b": 3.09, "layers": 36, "heads": 16, "kv_heads": 2, "head_dim": 128}),
    (r"qwen2\.5-(coder-)?7b", {"params_b": 7.62, "layers": 28, "heads": 28, "kv_heads": 4, "head_dim": 128}),
    (r"qwen2\.5-(coder-)?14b", {"params_b": 14.8, "layers": 48, "heads": 40, "kv_heads": 8, "head_dim": 128}),
    (r"qwen2\.5-(coder-)?32b", {"params_b": 32.8, "layers": 64, "heads": 40, "kv_heads": 8, "head_dim": 128}),
    (r"gemma-2-9b", {"params_b": 9.24, "layers": 42, "heads": 16, "kv_heads": 8, "head_dim": 256}),
    (r"mistral-small-24b", {"params_b": 23.6, "layers": 40, "heads": 32, "kv_heads": 8, "head_dim": 128}),
    (r"phi-3(\.5)?-mini", {"params_b": 3.82, "layers": 32, "heads": 32, "kv_heads": 32, "head_dim": 96}),
)
# Bits per weight of each quantization (vLLM and TGI names).
QUANT_BITS = {"gptq": 4, "awq": 4, "awq_marlin": 4, "gptq_marlin": 4, "marlin": 4, "bitsandbytes": 4,
              "bitsandbytes-nf4": 4, "bitsandbytes-fp4": 4, "gguf": 4.5, "eetq": 8, "fp8": 8}
# CUDA context, activations and fragmentation per GPU, in GiB.
GPU_OVERHEAD_GIB = 1.5
# Quantized checkpoints keep embeddings, norms and the LM head in 16 bit: about 10 % extra.
QUANT_EXTRA = 1.1

_SIZE_MOE = re.compile(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z])")
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z])")


def model_size_hint(model, facts=None):
    """Architecture facts of a model id: the Hub's (``facts``, from ``_model_facts.facts_of``) where
    it told them, else from MODEL_TABLE (the fallback when the Hub cannot be read), else parameters
    from the size hint in the name (``7B``, ``13b``, ``135M``, ``8x7B``). Returns a dict with
    ``params_b`` and ``source`` (``hub``, ``table`` or ``name``), plus
    ``layers``/``heads``/``kv_heads``/``head_dim`` where known; None when the size is unknown."""
    name = str(model or "").lower()
    hub = _model_facts.architecture(facts)
    table = None
    for pattern, known in MODEL_TABLE:
        if re.search(pattern, name):
            table = dict(known, source="table")
            break
    if hub and "params_b" in hub and "layers" in hub:
        return hub
    if hub and table:
        # A gated repository without access shows its parameter count but not its config.json.
        return dict(table, **hub)
    if table:
        return table
    if hub and "params_b" in hub:
        return hub
    base = name.rsplit("/", 1)[-1]
    moe = _SIZE_MOE.search(base)
    if moe:
        # Mixture of experts share attention: about 85 % of n x size.
        return {"params_b": round(int(moe.group(1)) * float(moe.group(2)) * 0.85, 2), "source": "name"}
    match = _SIZE.search(base)
    if match:
        number = float(match.group(1))
        return {"params_b": number if match.group(2) == "b" else number / 1000.0, "source": "name"}
    return None


def weight_bits(model, quantization="", dtype="", facts=None):
    """Bits per weight: the checkpoint's (its quantization_config, from the Hub's ``facts``), the
    quantization's, the one the model id implies (GPTQ, AWQ, 8bit), or 16 (32 for float32)."""
    quant = (quantization or "").lower()
    name = str(model or "").lower()
    if facts and facts.get("status") == "ok":
        if facts.get("quant_bits") and (not quant or quant.split("_")[0] == facts.get("quant_method")):
            return facts["quant_bits"]
        if not quant:
            return 32 if dtype in ("float32",) else 16
    if quant in QUANT_BITS:
        if quant == "gptq" and re.search(r"(8bit|int8|8-bit)", name):
            return 8
        return QUANT_BITS[quant]
    for marker in ("gptq", "awq"):
        if re.search(r"(^|[-_./])%s([-_.]|$)" % marker, name):
            return 8 if re.search(r"(8bit|int8|8-bit)", name) else 4
    if re.search(r"(^|[-_./])fp8([-_.]|$)", name):
        return 8
    return 32 if dtype in ("float32",) else 16


def memory_fit(model, gpu_type, gpu_count=1, quantization="", dtype="", max_model_len=4096,
               memory_fraction=0.9, variable_prefix="icc_", bits=None, length_var=None, smaller=None,
               shared_context=False, facts=None):
    """Estimate whether ``model`` fits on ``gpu_count`` GPUs of ``gpu_type`` (tensor parallel: the
    weights and the KV cache are split over the GPUs).

    Per GPU: weights (parameters x bits / 8, +10 % for quantized checkpoints) / GPUs, plus the KV
    cache of one sequence of ``max_model_len`` tokens (2 x layers x KV heads x head size x 2 bytes
    per token; without the architecture, the no-GQA size of a model of that many parameters), plus
    1.5 GiB of CUDA context and activations. Compared with GPU memory x ``memory_fraction``.

    Returns ``{"verdict": "fits" | "tight" | "refuse" | "unknown", "message", "need_gib",
    "budget_gib", "weights_gib", "kv_gib", "params_b", "bits", "source"}``. ``refuse``: the weights
    alone (with overhead) do not fit, or a model of known architecture (the Hub's or the table's)
    does not fit one full-length sequence; ``tight``: fits, but with room for fewer than 4 full-length sequences (or the KV size is
    only a no-GQA guess and does not fit); ``unknown``: no size in the table or the name.

    ``bits``: the effective bits per weight when the engine knows them (a GGUF file's type; no extra
    for embeddings then); ``length_var``: the variable of the context length in the advice;
    ``smaller``: the advice for fewer bits (default: a GPTQ variant); ``shared_context``: the engine
    allocates the KV cache of ``max_model_len`` tokens once for all its requests (llama.cpp's
    --ctx-size), so there is no "fewer than 4 sequences" verdict. ``facts``: the Hub's facts of the
    model (``_model_facts``): its real parameter count, KV-cache shape and checkpoint bits.
    """
    info = GPU_TYPES.get(gpu_type)
    count = int(gpu_count or 1)
    out = {"verdict": "unknown", "message": "", "need_gib": None, "budget_gib": None, "weights_gib": None,
           "kv_gib": None, "params_b": None, "bits": None, "source": None}
    if info is None:
        out["message"] = "unknown GPU type %r; no memory estimate" % (gpu_type,)
        return out
    budget = info["memory_mib"] / 1024.0 * float(memory_fraction)
    out["budget_gib"] = round(budget, 2)
    hub = facts
    facts = model_size_hint(model, hub)
    if facts is None:
        out["message"] = ("no size known for %s (not in the table, no size such as 7B or 135M in the name); "
                          "the memory fit was not estimated" % model)
        return out
    extra = QUANT_EXTRA if bits is None else 1.0
    bits = weight_bits(model, quantization, dtype, hub) if bits is None else bits
    params = facts["params_b"] * 1e9
    weights = params * bits / 8.0 * (extra if bits < 16 else 1.0) / 2 ** 30
    kv_known = all(k in facts for k in ("layers", "kv_heads", "head_dim"))
    if kv_known:
        per_token = 2 * facts["layers"] * facts["kv_heads"] * facts["head_dim"] * 2
    else:
        # Dense transformer: params ~ 12 x layers x d^2 with layers ~ d / 128.
        d_model = (params * 128 / 12.0) ** (1 / 3.0)
        per_token = 2 * (d_model / 128.0) * d_model * 2
    tokens = int(max_model_len or 4096)
    kv = per_token * tokens / 2 ** 30
    per_gpu_weights = weights / count
    per_gpu_kv = kv / count
    need = per_gpu_weights + per_gpu_kv + GPU_OVERHEAD_GIB
    out.update(need_gib=round(need, 2), weights_gib=round(weights, 2), kv_gib=round(kv, 2),
               params_b=facts["params_b"], bits=bits, source=facts["source"])
    desc = ("%s (%.3gB parameters, %s bit) on %d x %s: about %.1f GiB per GPU (weights %.1f GiB, KV cache "
            "of %s %d-token %s %.2f GiB, overhead %.1f GiB) of %.1f GiB usable"
            % (model, facts["params_b"], bits, count, info["product"], need, per_gpu_weights,
               "the" if shared_context else "one", tokens, "context" if shared_context else "sequence", per_gpu_kv,
               GPU_OVERHEAD_GIB, budget))
    fix = []
    if count < info["max_per_node"]:
        fix.append("more GPUs (%sgpu_count up to %d)" % (variable_prefix, info["max_per_node"]))
    if bits >= 16 or smaller:
        fix.append(smaller or "a GPTQ (4 bit) variant with %squantization=gptq" % variable_prefix)
    if info["memory_mib"] < 32768:
        fix.append("%sgpu_type=gpu-tesla-v100s (32 GB)" % variable_prefix)
    fix.append("a smaller model")
    # The context length is icc_max_total_tokens / tgi_max_total_tokens / vllm_max_model_len.
    length_var = length_var or variable_prefix + ("max_model_len" if variable_prefix == "vllm_" else "max_total_tokens")
    if per_gpu_weights + GPU_OVERHEAD_GIB > budget:
        out["verdict"] = "refuse"
        out["message"] = "the weights do not fit: %s. Use %s." % (desc, ", or ".join(fix))
    elif need > budget:
        if kv_known:
            out["verdict"] = "refuse"
            out["message"] = ("%s does not fit: %s. Use a shorter context (%s), or %s." % (
                "the context" if shared_context else "one full-length sequence", desc,
                length_var if shared_context else length_var + ", the engine's max_model_len", ", or ".join(fix)))
        else:
            out["verdict"] = "tight"
            out["message"] = ("probably too tight (the KV cache size is a guess without the model's "
                              "architecture): %s. A shorter context (%s) or more GPUs would help."
                              % (desc, length_var))
    elif not shared_context and per_gpu_weights + 4 * per_gpu_kv + GPU_OVERHEAD_GIB > budget:
        out["verdict"] = "tight"
        out["message"] = "fits, but with room for fewer than 4 full-length sequences: %s." % desc
    else:
        out["verdict"] = "fits"
        out["message"] = "fits: %s." % desc
    return out
