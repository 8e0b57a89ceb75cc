# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of one workflow (deploy, scale, change_model) in one namespace: pure Python.

Data flows one way::

    inventory + extra vars --\\
    live engine Deployment ---+--> resolve() --> llm (the wanted settings) --> checks() --> refusals
    workflow request --------/        |                                          warnings
                                      +--> previous (what runs now) --> changes() --> what will change

``Inputs`` is how the plan sees the user's variables (only those it names: nothing else is read);
``resolve`` turns them into the settings of the engine (``llm``), the role configuration the rules
check (``role_config``) and the names of the variables the user set (``names``), so that a refusal
of a role variable also names the variable the user wrote. Nothing here talks to a cluster: the
action plugin ``haw_icc.llm.llm_plan`` reads the live state and asks for rights and GPUs.
"""

from __future__ import annotations

import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _engines, _model_facts
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_TYPES
from ansible_collections.haw_icc.llm.plugins.module_utils._manifests import NOT_SETTINGS, canonical

MISSING = object()

LIVE_WORKFLOWS = ("scale", "change_model")
WORKFLOWS = ("deploy",) + LIVE_WORKFLOWS

# Whole-number inputs and what to use instead; a refusal names the variable the user set.
WHOLE_NUMBERS = (
    ("icc_gpu_count", "a number of GPUs from 1 to 4, e.g. 2"),
    ("vllm_gpu_count", "a number of GPUs from 1 to 4, e.g. 2"),
    ("tgi_gpu_count", "1 (TGI does not shard on V100)"),
    ("icc_max_total_tokens", "a number of tokens such as 4096"),
    ("vllm_max_model_len", "a number of tokens such as 4096"),
    ("tgi_max_total_tokens", "a number of tokens such as 4096"),
    ("llamacpp_gpu_count", "a number of GPUs from 1 to 4, e.g. 2"),
    ("llamacpp_ctx_size", "a number of tokens such as 8192"),
    ("icc_max_input_length", "a number of tokens such as 2048"),
    ("tgi_max_input_tokens", "a number of tokens such as 2048"),
)
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_BOOLISH = ("true", "false", "yes", "no", "1", "0")

DEFAULT_GATED = ("^meta-llama/", "^mistralai/", "^google/gemma", "^bigcode/starcoder2?-")
DEFAULT_INPUT_TOKENS = 2048

# The settings whose change restarts the engine pod (a V100 then reloads the model).
# Compared where the engine has a role variable for the setting.
POD_SETTINGS = ("model", "quantization", "max_model_len", "max_input_tokens", "gpu_count", "shm_size")


class PlanError(Exception):
    """The plan refuses: ``problems`` are the messages, each naming a variable."""

    def __init__(self, problems, prefix="", suffix="Nothing was changed."):
        self.problems = list(problems)
        text = " ".join(self.problems)
        super().__init__(("%s%s %s" % (prefix, text, suffix)).strip())


class Inputs(object):
    """The user's variables of one host. ``lookup(name)`` returns the (templated) value or MISSING."""

    def __init__(self, lookup, host):
        self._lookup = lookup
        self.host = host

    def get(self, name, default=MISSING):
        value = self._lookup(name) if name else MISSING
        return default if value is MISSING else value

    def has(self, name):
        return self.get(name) is not MISSING

    def set(self, name):
        """Defined and not empty, as the user wrote it."""
        value = self.get(name, "")
        return value is not None and value != ""

    @property
    def namespace(self):
        return self.get("icc_namespace", self.host)


def _shown(value):
    return "'%s'" % value if isinstance(value, str) else str(value)


def input_problems(inputs):
    """What is wrong with the inputs before the cluster is read: the engine choice, the namespace
    name and whole numbers. A list of messages (empty when fine)."""
    engine = inputs.get("icc_engine", "vllm")
    webui = inputs.get("icc_webui", True)
    if engine not in _engines.ENGINES or str(webui).lower() not in _BOOLISH:
        return ["icc_engine=%s / icc_webui=%s: use icc_engine %s, and icc_webui true or false."
                % (engine, webui, " or ".join(_engines.names()))]
    out = []
    ns = inputs.namespace
    if not (isinstance(ns, str) and _NAMESPACE.match(ns)):
        out.append("icc_namespace='%s': not a Kubernetes namespace name. Use your own namespace, w<id>-default "
                   "(lower-case letters, digits and '-')." % (ns,))
    for name, use in WHOLE_NUMBERS:
        value = inputs.get(name, "")
        if value == "" or isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            continue
        out.append("%s=%s: not a whole number. Use %s." % (name, _shown(value), use))
    return out


# The -e variables of scale and change_model, as the user writes them: name -> (when not given,
# whole number, what to use). When not given: "required" refuses, "optional" leaves the setting as
# it runs, a value ('' for quantization: none, or what the new model's config says) is the setting.
# A value the engine rules check (the model id, shm_size, the GPU range) is left to them; they name
# the same variable.
REQUIRED, OPTIONAL = "required", "optional"
REQUEST_VARS = {
    "deploy": {},
    "scale": {"gpu_count": (REQUIRED, True, "the number of GPUs, 1 to 4 (e.g. -e gpu_count=2)"),
              "shm_size": (OPTIONAL, False, "a quantity such as 32Gi")},
    "change_model": {"model": (REQUIRED, False, "a Hugging Face model id such as -e model=TheBloke/Mistral-7B-Instruct-v0.2-GPTQ "
                                                "(llama.cpp: user/model-GGUF:Q4_K_M)"),
                     "quantization": ("", False, "gptq, or nothing"),
                     "max_model_len": (OPTIONAL, True, "a number such as 4096 (tokens)")},
}


def request_of(workflow, raw):
    """The workflow's request from its -e variables as the playbook passes them (``''`` or None for
    one not given): ``(request, problems)``. Whole numbers become numbers; see REQUEST_VARS for one
    not given. A problem names the variable, its value and what to use."""
    request, problems = {}, []
    known = REQUEST_VARS[workflow]
    for name, (absent, whole, use) in known.items():
        value = raw.get(name)
        text = value.strip() if isinstance(value, str) else value
        if text is None or text == "":
            if absent == REQUIRED:
                problems.append("%s=(unset): set %s to %s." % (name, name, use))
            elif absent != OPTIONAL:
                request[name] = absent
            continue
        if whole:
            if isinstance(text, bool) or not (isinstance(text, int) or (isinstance(text, str) and text.isdigit())):
                problems.append("%s=%s: not a whole number. Use %s." % (name, value, use))
                continue
            text = int(text)
        request[name] = text
    unknown = sorted(set(raw) - set(known))
    if unknown:
        problems.append("%s: not a setting of %s (it takes %s)." % (
            ", ".join(unknown), workflow, ", ".join(known) or "the inventory's variables"))
    return request, problems


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _from_inventory(inputs, engine, defaults):
    e = engine
    return {
        "model": inputs.get("icc_model", inputs.get(e.var("model"), defaults.get(e.var("model")))),
        "quantization": inputs.get("icc_quantization", inputs.get(e.var("quantization"), "")),
        "max_model_len": _int(inputs.get("icc_max_total_tokens",
                                         inputs.get(e.var("max_model_len"), defaults.get(e.var("max_model_len"))))),
        "max_input_tokens": _int(inputs.get("icc_max_input_length",
                                            inputs.get(e.var("max_input_tokens"), DEFAULT_INPUT_TOKENS))),
        "gpu_count": _int(inputs.get("icc_gpu_count", inputs.get(e.var("gpu_count"), 1)), 1),
        "shm_size": inputs.get(e.var("shm_size"), ""),
    }


def _from_live(live):
    gpus = _int(live.get("gpu_count"), 1)
    shm = live.get("shm_size") or ""
    return {
        "model": live.get("model") or "",
        "quantization": live.get("quantization") or "",
        "max_model_len": _int(live.get("max_len")),
        "max_input_tokens": _int(live.get("max_input_tokens"), DEFAULT_INPUT_TOKENS) or DEFAULT_INPUT_TOKENS,
        "gpu_count": gpus,
        # The role's default ('' = 8Gi per GPU) when the live size is that default.
        "shm_size": "" if shm == "%dGi" % (8 * gpus) else shm,
    }


# Role configuration keys the plan sets itself (resolve / role_config), never carried over.
_PLAN_KEYS = ("name", "namespace", "model", "gpu_type", "gpu_count", "shm_size", "nccl_fallback", "storage_class",
              "hf_token_secret", "api_key_secret", "wait_timeout", "unschedulable_grace")


def carried(inputs, engine, defaults, live):
    """What scale and change_model keep of the running engine's configuration (its
    haw-icc.de/settings annotation): every setting the user does not set now, the plan does not set
    itself and that differs from the role's default. ``{setting: value}`` (no prefix)."""
    p = engine.prefix
    own = set(_PLAN_KEYS) | set(engine.specific({"model": "", "quantization": "", "max_model_len": 0,
                                                 "max_input_tokens": 0})) | set(engine.not_config)
    out = {}
    for key, value in sorted(((live or {}).get("settings") or {}).items()):
        var = p + key
        if key in own or var not in defaults or inputs.has(var):
            continue
        if value != canonical(defaults[var]):
            out[key] = value
    return out


def user_names(inputs, engine, base, request):
    """role variable -> the variable the user set it with (the -e of scale / change_model, or icc_*)."""
    out = {}
    for key, icc in _engines.COMMON_VARS.items():
        from_inventory = base == "inventory" and icc and inputs.get(icc, "") != ""
        user = key if key in request else (icc if from_inventory else "")
        if user:
            for role_var in engine.role_vars_of(key):
                out[role_var] = user
    return out


def resolve(inputs, engine, defaults, base="inventory", request=None, live=None, wait_timeout=None):
    """The wanted settings of ``engine`` (an ``_engines.Engine``). ``defaults``: the engine role's
    defaults. ``base``: 'inventory' (deploy) or 'live' (start from the running Deployment, whose
    settings ``live`` are; scale, change_model). ``request``: the workflow's overrides (model,
    quantization, max_model_len, gpu_count, shm_size). Returns ``(llm, names)``; no secrets."""
    e = engine
    p = e.prefix
    request = dict(request or {})
    live_base = base == "live" and live
    cfg = _from_live(live) if live_base else _from_inventory(inputs, e, defaults)
    total = _int(request.get("max_model_len", cfg["max_model_len"]))
    # An input length the user set is passed on as it is (the engine rules refuse one that is not
    # below the total); only the default is lowered to fit a shorter total.
    input_set = base == "inventory" and (inputs.has("icc_max_input_length") or inputs.has("tgi_max_input_tokens"))
    max_input = cfg["max_input_tokens"]
    if not (max_input < total or input_set):
        max_input = max(total // 2, 1)
    fraction_var, fraction_default = e.memory_fraction
    keep = carried(inputs, e, defaults, live) if live_base else {}
    kept = (live.get("settings") or {}) if live_base else {}
    llm = {
        "engine": e.name,
        "name": inputs.get(p + "name", defaults.get(p + "name", e.name)),
        "namespace": inputs.namespace,
        "model": request.get("model", cfg["model"]),
        "quantization": request.get("quantization", cfg["quantization"]),
        "max_model_len": total,
        "max_input_tokens": max_input,
        "gpu_type": inputs.get("icc_gpu_type", inputs.get(p + "gpu_type", kept.get("gpu_type", "gpu-tesla-v100"))),
        "gpu_count": _int(request.get("gpu_count", cfg["gpu_count"]), 1),
        # A new GPU count gets the role's default /dev/shm (8Gi per GPU) unless asked otherwise.
        "shm_size": request.get("shm_size", cfg["shm_size"] if "gpu_count" not in request else ""),
        "nccl_fallback": boolean(inputs.get("icc_nccl_fallback", inputs.get(p + "nccl_fallback", kept.get("nccl_fallback", False))),
                                 strict=False),
        "webui": boolean(inputs.get("icc_webui", True), strict=False),
        "webui_name": inputs.get("webui_name", "webui"),
        "memory_fraction": (inputs.get(p + fraction_var, keep.get(fraction_var, fraction_default)) if fraction_var
                            else fraction_default),
        "wait_timeout": _int(wait_timeout if wait_timeout is not None
                             else inputs.get(p + "wait_timeout", defaults.get(p + "wait_timeout", 2700)), 2700),
        # Secret references (names only): the user's own, else (scale, change_model) those of the
        # running Deployment, so that a reconfigure keeps the token and the API key it had.
        "hf_token_secret": inputs.get(p + "hf_token_secret", "") or (live.get("hf_token_secret", "") if live_base else ""),
        "api_key_secret": "" if not e.api_key else (
            inputs.get(p + "api_key_secret", "") or (live.get("api_key_secret", "") if live_base else "")),
        # scale, change_model: the running engine's other settings (dtype, max_num_seqs, extra args, ...)
        "carried": keep,
    }
    return llm, user_names(inputs, e, base, request)


def role_config(inputs, engine, defaults, llm):
    """The configuration the engine role will check and render: its defaults, what the plan carries
    over from the running engine (``llm["carried"]``) over them, the user's role variables over
    those, and the plan's settings over all."""
    p = engine.prefix
    skip = set(p + k for k in engine.not_config)
    out = {}
    keep = llm.get("carried") or {}
    for key, default in defaults.items():
        if key.startswith(p) and key not in skip:
            out[key[len(p):]] = _engine.like_default(inputs.get(key, keep.get(key[len(p):], default)), default)
    out.update(name=llm["name"], namespace=llm["namespace"], model=llm["model"], gpu_type=llm["gpu_type"],
               gpu_count=int(llm["gpu_count"]), shm_size=llm["shm_size"],
               storage_class=inputs.get(p + "cache_storage_class", ""), wait_timeout=int(llm["wait_timeout"]),
               hf_token_secret=llm.get("hf_token_secret") or "")
    if engine.var("nccl_fallback"):
        out["nccl_fallback"] = llm["nccl_fallback"]
    if engine.api_key:
        out["api_key_secret"] = llm.get("api_key_secret") or ""
    out.update(engine.specific(llm))
    return out


def hf_token(inputs, engine):
    """The Hugging Face token the user set in the inventory: icc_hf_token, else <engine>_hf_token
    (as tasks/plan.yml hands it to the role), or ''. Never logged."""
    return str(inputs.get("icc_hf_token", inputs.get(engine.prefix + "hf_token", "")) or "")


def gated(inputs, model):
    """Whether the model id matches icc_gated_models (deprecated: the Hub says which models are
    gated), or the built-in patterns when the Hub could not be read."""
    patterns = inputs.get("icc_gated_models", list(DEFAULT_GATED)) or []
    return bool(patterns) and re.search("|".join(patterns), str(model)) is not None


GATED_MODELS_DEPRECATION = {
    "msg": "icc_gated_models is deprecated: the preflight reads whether a model is gated, and whether your token "
           "may read it, from the Hugging Face Hub. Remove icc_gated_models from your inventory (it still marks the "
           "models it matches as gated until then).",
    "version": "2.0.0", "collection_name": "haw_icc.llm"}


def deprecations(inputs):
    """The deprecated inputs the user set, as Ansible deprecation entries."""
    return [dict(GATED_MODELS_DEPRECATION)] if inputs.has("icc_gated_models") else []


def hub_unreachable(facts):
    """The one warning of a run whose Hub could not be read (the same text for every namespace of
    the run, so that Ansible shows it once), or None."""
    if not facts or facts.get("status") != "unreachable":
        return None
    return ("The Hugging Face Hub at %s could not be read (%s): the preflight checks %s with its built-in table of "
            "model sizes, heads and gated organisations instead (set icc_hf_endpoint, or HF_ENDPOINT, to a mirror "
            "it can reach)." % (facts.get("endpoint"), facts.get("detail") or "no answer", facts.get("model")))


def checks(inputs, engine, llm, names, cfg, facts=None, running=None):
    """The V100 and engine rules, the memory fit, the Hub facts of the model (``_model_facts``:
    existence, gated access, context limit, checkpoint quantization; None when not read) and the
    gated-model check of the plan. ``running``: the model that runs in the namespace now (its files
    are in the model cache, so the Hub's "not found" or "no access" only warns for it). Returns
    ``(refusals, warnings, fit)``; each refusal names the variable the user set first."""
    p = engine.prefix
    rules = engine.check(cfg, facts)
    refusals = []
    for err in rules["errors"]:
        var = err.split("=", 1)[0]
        refusals.append("%s -> %s" % (names[var], err) if var in names else err)
    if llm["quantization"] and not engine.var("quantization"):
        refusals.append("%s=%s: %s takes no quantization setting. Use %s (the GGUF type is part of the model, "
                        "e.g. 'user/model-GGUF:Q4_K_M'), and icc_quantization ''." % (
                            names.get(p + "quantization", "icc_quantization"), llm["quantization"], engine.display,
                            names.get(p + "model", "icc_model")))
    hub_refusals, hub_warnings = _model_facts.checks(facts, engine, llm, names, GPU_TYPES.get(llm["gpu_type"]),
                                                     engine.quant_min_cc)
    if not _model_facts.usable(facts):  # no checkpoint facts: what the model's name says
        hub_warnings += _model_facts.name_checks(engine, llm, names)
    token = hf_token(inputs, engine)
    status = (facts or {}).get("status")
    if hub_refusals and status in ("not_found", "no_access", "bad_token") and (
            running == llm["model"] or (status == "not_found" and llm["hf_token_secret"] and not token)):
        # A model that runs already, or a private one whose token only the cluster's Secret holds.
        hub_warnings = [r + (" It runs already (its files are in the model cache), so this run goes on."
                             if running == llm["model"] else
                             " Its token is in the Secret %s, which the preflight does not read, so this run goes on."
                             % llm["hf_token_secret"]) for r in hub_refusals] + hub_warnings
        hub_refusals = []
    refusals.extend(hub_refusals)
    fit = engine.memory_fit(llm, cfg, facts if _model_facts.usable(facts) else None)
    if fit["verdict"] == "refuse" and boolean(inputs.get("icc_memory_check", True), strict=False):
        refusals.append("%s=%s: %s (icc_memory_check=false skips this estimate)"
                        % (names.get(p + "model", "icc_model"), llm["model"], fit["message"]))
    token_set = bool(token) or bool(llm["hf_token_secret"])
    warnings = list(rules["warnings"]) + hub_warnings
    hub_gated = status == "no_token" or (status == "ok" and bool(facts.get("gated")))
    by_pattern = gated(inputs, llm["model"]) if (inputs.has("icc_gated_models") or not _model_facts.usable(facts)) \
        else False
    if (hub_gated or by_pattern) and not token_set:
        refusals.append(
            "icc_hf_token is empty but %s is a gated model (%s): the download would fail inside the pod. Accept the "
            "license on huggingface.co, create a token and set icc_hf_token (in Ansible Vault) or %shf_token_secret "
            "to an existing Secret with key token." % (
                llm["model"], "the Hub says so" if hub_gated else "it matches icc_gated_models", p))
    elif status == "no_token" and token_set:
        warnings.append("%s is a gated model and its token is in the Secret %s, which the preflight does not read: "
                        "whether the token may read the model shows when the pod downloads it."
                        % (llm["model"], llm["hf_token_secret"]))
    if fit["verdict"] in ("tight", "unknown"):
        warnings.append(fit["message"])
    return refusals, warnings, fit


# Role settings that do not reach the engine pod (a change of them restarts nothing).
_NOT_POD = ("service_port", "cache_size")


def changes(llm, previous, cfg=None, applied=None):
    """What the plan changes against what runs now (``previous``: the running engine's settings in
    the plan's keys, or None). ``cfg``, ``applied``: the role configuration to apply and the one the
    running Deployment was applied with (its haw-icc.de/settings annotation; {} for one without),
    so that a change of any other setting (dtype, max_num_seqs, ...) is listed too. ``action``:
    create, switch (another engine replaces the running one), update or none; ``restart``: whether
    the engine pod (and so the model) restarts."""
    if not previous:
        return {"action": "create", "restart": True, "changes": [], "switch": None}
    if previous["engine"] != llm["engine"] or previous["name"] != llm["name"]:
        return {"action": "switch", "restart": True, "changes": [],
                "switch": {"engine": previous["engine"], "name": previous["name"]}}
    engine = _engines.get(llm["engine"])
    diff = [{"setting": k, "from": previous.get(k), "to": llm.get(k)} for k in POD_SETTINGS
            if engine.var(k) and str(previous.get(k)) != str(llm.get(k))]
    if cfg and applied:
        p = engine.prefix
        covered = set(POD_SETTINGS) | set(engine.var(k)[len(p):] for k in POD_SETTINGS if engine.var(k))
        covered |= set(NOT_SETTINGS) | set(_NOT_POD) | set(("served_model_name", "hf_token_secret", "api_key_secret"))
        diff += [{"setting": k, "from": applied.get(k), "to": canonical(cfg[k])} for k in sorted(cfg)
                 if k not in covered and k in applied and canonical(cfg[k]) != applied[k]]
    return {"action": "update" if diff else "none", "restart": bool(diff), "changes": diff, "switch": None}


def summary_line(namespace, change):
    if change["action"] == "create":
        return "%s: nothing runs yet; the engine is created." % namespace
    if change["action"] == "switch":
        sw = change["switch"]
        return ("%s: %s (Deployment %s) is removed first, its model cache PVC is kept; then the new engine "
                "is created." % (namespace, sw["engine"], sw["name"]))
    if change["action"] == "none":
        return "%s: the engine settings are unchanged; the model does not restart." % namespace
    return "%s: %s; the engine pod restarts and reloads the model." % (namespace, ", ".join(
        "%s %s -> %s" % (c["setting"], c["from"] if c["from"] not in (None, "") else "(default)",
                         c["to"] if c["to"] not in (None, "") else "(default)") for c in change["changes"]))
