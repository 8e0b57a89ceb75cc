# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model facts from the Hugging Face Hub (pure): what a repository's config.json, its safetensors
parameter counts and its gated state say about a model, and the checks of the plan they drive.

``plugin_utils/_hub.py`` reads the Hub (with ``huggingface_hub``) and hands the plain answers to
``facts_of``; ``_memory.model_size_hint`` and ``_engine.check_tensor_parallel`` take the facts in
place of their name table, and ``checks`` adds the refusals only the facts allow: a model that does
not exist, a gated one the token cannot read, a context above the model's limit and a checkpoint's
quantization that contradicts the setting or the GPU.

A facts dict has ``status`` (``ok``, ``not_found``, ``no_access``, ``no_token``, ``bad_token``,
``unreachable``, ``invalid``: not a model id, not asked), ``model`` (the repository), ``endpoint``, ``gated`` (False, 'auto' or 'manual'),
and, with ``ok``, the architecture (``params_b``, ``params_by_dtype``, ``layers``, ``heads``,
``kv_heads``, ``head_dim``, ``max_position``, ``torch_dtype``, ``quant_method``, ``quant_bits``;
each None when the repository does not say), with ``source`` 'hub'.
"""

from __future__ import annotations

import re

# The safetensors dtype GPTQ and AWQ pack their weights into.
_PACKED = ("I32",)


def repository(model):
    """The repository of a model reference: ``user/model:Q4_K_M`` (a GGUF type) -> ``user/model``."""
    return str(model or "").split(":", 1)[0].strip()


def _first(cfg, *keys):
    for key in keys:
        value = cfg.get(key)
        if value not in (None, ""):
            return value
    return None


def text_config(config):
    """The language model's part of a config.json (multimodal models nest it as text_config)."""
    config = dict(config or {})
    inner = config.get("text_config") or config.get("llm_config")
    if isinstance(inner, dict) and _first(inner, "num_attention_heads", "n_head") is not None:
        merged = dict(config)
        merged.update(inner)
        return merged
    return config


# The keys vLLM 0.8.5 (_get_and_verify_max_len) reads the model's length from; the smallest wins.
_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
                "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len")


def max_position(config):
    """The longest context the model was built for, derived as vLLM 0.8.5 derives it: the smallest
    of its length keys (``model_max_length`` overrides them), times the rope_scaling factor unless the
    rope type already counts it (su, longrope, llama3; yarn scales its original length); None when
    the config names no length (ALiBi models such as BLOOM)."""
    cfg = text_config(config)
    lengths = [cfg[k] for k in _LENGTH_KEYS if isinstance(cfg.get(k), int)]
    if not lengths:
        return None
    limit = cfg["model_max_length"] if isinstance(cfg.get("model_max_length"), int) else min(lengths)
    scaling = cfg.get("rope_scaling")
    if isinstance(scaling, dict) and "gemma3" not in str(cfg.get("model_type") or ""):
        kind = scaling.get("rope_type") or scaling.get("type")
        if kind not in ("su", "longrope", "llama3"):
            factor = scaling.get("factor", 1.0)
            if kind == "yarn" and isinstance(scaling.get("original_max_position_embeddings"), int):
                limit = scaling["original_max_position_embeddings"]
            if isinstance(factor, (int, float)):
                limit = int(limit * factor)
    return limit


def quantization(config):
    """``(method, bits)`` of a checkpoint's quantization_config, or ``(None, None)``."""
    q = (config or {}).get("quantization_config") or {}
    if not isinstance(q, dict) or not q:
        return None, None
    method = str(q.get("quant_method") or "").lower() or None
    bits = q.get("bits", q.get("w_bit"))
    if method == "bitsandbytes":
        bits = 4 if q.get("load_in_4bit") else 8 if q.get("load_in_8bit") else bits
    if method == "fp8":
        bits = 8
    return method, (bits if isinstance(bits, (int, float)) else None)


def parameters(by_dtype, bits=None):
    """The model's parameters from safetensors counts by dtype. A GPTQ or AWQ checkpoint packs
    32 / bits weights into each I32 element (qweight; the small qzeros and g_idx count alike), and a
    4-bit bitsandbytes checkpoint two into each U8: they are counted unpacked."""
    total = 0
    for dtype, count in (by_dtype or {}).items():
        if dtype in _PACKED and bits:
            total += count * 32 // int(bits)
        elif dtype == "U8" and bits == 4:
            total += count * 2
        else:
            total += count
    return total


def facts_of(model, config=None, params_by_dtype=None, gated=False, endpoint=None, status="ok", detail=None,
             gguf=None):
    """The facts of a repository from its config.json (a dict, or None when it could not be read),
    its safetensors parameter counts by dtype, its gated state and, for a repository of GGUF files,
    the Hub's GGUF summary (``total`` parameters, ``context_length``)."""
    out = {"status": status, "model": repository(model), "endpoint": endpoint, "gated": gated or False,
           "detail": detail, "source": "hub"}
    if status != "ok":
        return out
    cfg = text_config(config or {})
    method, bits = quantization(config or {})
    heads = _first(cfg, "num_attention_heads", "n_head", "num_heads")
    kv = _first(cfg, "num_key_value_heads", "n_head_kv", "num_kv_heads")
    if kv is None and heads is not None:
        kv = 1 if cfg.get("multi_query") else heads
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    head_dim = _first(cfg, "head_dim")
    if head_dim is None and isinstance(hidden, int) and isinstance(heads, int) and heads:
        head_dim = hidden // heads
    count = parameters(params_by_dtype, bits)
    gguf = gguf if isinstance(gguf, dict) else {}
    if not count and isinstance(gguf.get("total"), int):
        count = gguf["total"]
    limit = max_position(config or {})
    if limit is None and isinstance(gguf.get("context_length"), int):
        limit = gguf["context_length"]
    out.update(
        params_b=round(count / 1e9, 4) if count else None,
        params_by_dtype=dict(params_by_dtype or {}),
        layers=_first(cfg, "num_hidden_layers", "n_layer", "num_layers"),
        heads=heads, kv_heads=kv, head_dim=head_dim,
        max_position=limit,
        torch_dtype=_first(cfg, "torch_dtype", "dtype"),
        model_type=_first(cfg, "model_type"),
        quant_method=method, quant_bits=bits,
        config_read=config is not None,
    )
    return out


def architecture(facts):
    """The facts ``_memory`` and the tensor-parallel rule read (``params_b``, ``layers``, ``heads``,
    ``kv_heads``, ``head_dim``, ``source`` 'hub'), as far as the Hub told them; None without facts."""
    if not facts or facts.get("status") != "ok":
        return None
    out = dict((k, facts.get(k)) for k in ("params_b", "layers", "heads", "kv_heads", "head_dim")
               if isinstance(facts.get(k), (int, float)) and facts.get(k))
    if not out:
        return None
    out["source"] = "hub"
    return out


def usable(facts):
    """Whether the Hub answered about this model (so the name-based guesses step back)."""
    return bool(facts) and facts.get("status") not in (None, "unreachable", "invalid")


# Methods vLLM and TGI treat as the same checkpoint format (their Marlin kernels read GPTQ and AWQ).
_SAME = {"gptq_marlin": "gptq", "marlin": "gptq", "awq_marlin": "awq"}


def _page(facts):
    return "%s/%s" % ((facts.get("endpoint") or "https://huggingface.co").rstrip("/"), facts.get("model"))


# What a repository name says of its checkpoint (the Hub's quantization_config decides when it is read).
_NAME_FORMATS = (("gptq", "GPTQ"), ("awq", "AWQ"), ("gguf", "GGUF"))


def name_checks(engine, llm, names):
    """Warnings from the model's name alone, for when the Hub could not be read: a quantization
    setting the name contradicts (``icc_quantization: gptq`` with a model that has no GPTQ in its
    name), and a GGUF repository for an engine that does not load one."""
    warnings = []
    model = str(llm.get("model") or "")
    p = engine.prefix
    model_var = names.get(p + "model", "icc_model")
    marked = [label for marker, label in _NAME_FORMATS
              if re.search(r"(^|[-_./])%s([-_.:]|$)" % marker, model.rsplit("/", maxsplit=1)[-1], re.I)]
    quant_var = engine.var("quantization")
    if quant_var:
        wanted = str(llm.get("quantization") or "").lower()
        quant_name = names.get(quant_var, "icc_quantization")
        base = _SAME.get(wanted, wanted)
        if base in ("gptq", "awq") and base.upper() not in marked:
            warnings.append(
                "%s=%s: %s=%s has no %s in its name, so it is probably not a %s checkpoint and %s would refuse "
                "to load it that way (the Hub could not be asked). Use %s '' for it, or a %s variant (-%s in "
                "the name)." % (quant_name, wanted, model_var, model, base.upper(), base.upper(), engine.display,
                                quant_name, base.upper(), base.upper()))
    if "GGUF" in marked and engine.name != "llamacpp":
        warnings.append(
            "%s=%s looks like a GGUF repository, which %s does not load by its id (the Hub could not be asked). "
            "Use icc_engine llamacpp for GGUF models, or the original (safetensors) repository." % (
                model_var, model, engine.display))
    return warnings


def checks(facts, engine, llm, names, gpu_info, min_cc):
    """The refusals and warnings the Hub facts of ``llm['model']`` give. ``engine``: an
    ``_engines.Engine``; ``names``: role variable -> the variable the user set; ``gpu_info``: the
    GPU type's facts (``_icc.GPU_TYPES``); ``min_cc``: the engine's quantization methods and the
    compute capability each needs (None for an engine without that setting). Returns ``(refusals, warnings)``."""
    refusals, warnings = [], []
    if not facts:
        return refusals, warnings
    p = engine.prefix
    model_var = names.get(p + "model", "icc_model")
    token_var = "icc_hf_token"
    status = facts.get("status")
    if status == "not_found":
        refusals.append(
            "%s=%s: %s has no model of that name (or it is private and the token may not see it). Check the "
            "spelling on %s (the id is case-sensitive, e.g. HuggingFaceTB/SmolLM2-135M-Instruct)."
            % (model_var, llm["model"], facts.get("endpoint") or "the Hub", _page(facts)))
    elif status == "bad_token":
        refusals.append(
            "%s: the Hub does not accept this token (%s). Create a read token on %s/settings/tokens and set "
            "icc_hf_token (in Ansible Vault) or %shf_token_secret." % (
                token_var, facts.get("detail") or "invalid credentials",
                (facts.get("endpoint") or "https://huggingface.co").rstrip("/"), p))
    elif status == "no_access":
        refusals.append(
            "%s does not give access to %s=%s: it is a gated model and the token's account has not been granted "
            "it. Accept its license on %s with that account (or ask for access), or use a token of an account "
            "that has it." % (token_var, model_var, llm["model"], _page(facts)))
    if status != "ok":
        return refusals, warnings

    total = int(llm.get("max_model_len") or 0)
    limit = facts.get("max_position")
    length_var = engine.var("max_model_len")
    if limit and total > limit:
        length_name = names.get(length_var, "icc_max_total_tokens")
        text = ("%s=%d: %s was built for at most %d tokens (max_position_embeddings in its config.json)"
                % (length_name, total, llm["model"], limit))
        if engine.refuses_long_context:
            refusals.append(text + ", and %s refuses a longer context. Use %s %d or less." % (
                engine.display, length_name, limit))
        else:
            warnings.append(text + "; %s runs it, but answers beyond that length are unreliable. %s %d or less "
                            "is safe." % (engine.display, length_name, limit))

    quant_var = engine.var("quantization")
    method = facts.get("quant_method")
    if quant_var and min_cc is not None:
        wanted = str(llm.get("quantization") or "").lower()
        quant_name = names.get(quant_var, "icc_quantization")
        cc = (gpu_info or {}).get("compute_capability", (7, 0))
        gpu = llm.get("gpu_type")
        if wanted and not method:
            refusals.append(
                "%s=%s: %s is not a %s checkpoint (its config.json has no quantization_config), so %s cannot "
                "load it that way. Use %s '' for this model, or a %s variant of it (a repository with -%s in "
                "its name)." % (quant_name, wanted, llm["model"], wanted.upper(), engine.display, quant_name,
                                wanted.upper(), wanted.upper()))
        elif wanted and method and _SAME.get(wanted, wanted) != _SAME.get(method, method) and wanted not in (
                "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4"):
            refusals.append(
                "%s=%s: %s is a %s checkpoint (quantization_config in its config.json), and %s refuses another "
                "method for it. Use %s '' (the checkpoint's own) or %s %s." % (
                    quant_name, wanted, llm["model"], method.upper(), engine.display, quant_name, quant_name, method))
        elif not wanted and method:
            need = min_cc.get(method)
            if need and cc < need:
                refusals.append(
                    "%s=%s: the model is a %s checkpoint (quantization_config in its config.json), which %s "
                    "uses even with %s ''; %s needs compute capability %d.%d and %s has %d.%d. Use a GPTQ or "
                    "unquantized variant of the model." % (
                        model_var, llm["model"], method.upper(), engine.display, quant_name, method, need[0],
                        need[1], gpu, cc[0], cc[1]))

    return refusals, warnings
