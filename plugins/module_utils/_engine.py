# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine rules for the ICC GPUs: the one place that knows what vLLM, TGI and Open WebUI may be
asked to do on a V100 (compute capability 7.0), and how their command lines are built.

Pure Python (no Ansible, no Kubernetes client): used by the filter plugin ``haw_icc.llm.engine``
(and through it by the roles ``vllm``, ``tgi`` and ``webui``), by the preflight and by modules.
GPU facts (memory, compute capability, GPUs per node) come from ``_icc.GPU_TYPES``.

Every check returns a list of :class:`InputError` (refusals, each naming the variable, the bad
value and what to use instead) and a list of warnings; nothing here talks to a cluster, so a
refusal always happens before anything is created.
"""

from __future__ import annotations

import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._flags_tgi import TGI_FLAGS, TGI_FLAGS_VERSION
from ansible_collections.haw_icc.llm.plugins.module_utils._flags_vllm import VLLM_FLAGS, VLLM_FLAGS_VERSION
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GFD_PRODUCT, GPU_RESOURCE, GPU_TYPES, quantity
from ansible_collections.haw_icc.llm.plugins.module_utils import _model_facts
from ansible_collections.haw_icc.llm.plugins.module_utils._memory import model_size_hint

# --- Images -------------------------------------------------------------------------------------

# vLLM: production-stack's V100 guide (tutorials/25-v100-legacy-gpu-deployment.md) validated
# v0.8.5 with dtype half and the V0 engine (VLLM_USE_V1=0) on V100. Newer default builds move to
# CUDA versions that drop sm70, and the V0 engine is gone from 0.11 on.
VLLM_DEFAULT_IMAGE = "vllm/vllm-openai:v0.8.5"
VLLM_KNOWN_GOOD = ((0, 8, 5), (0, 8, 5))
# TGI: 2.4.1 is the last 2.x release: it has the OpenAI-compatible Messages API (from 1.4),
# the --max-input-tokens flag (from 2.0) and the non-flash fallback for sm70. 3.x makes
# flashinfer / prefix caching (sm75+/sm80+) the default path.
TGI_DEFAULT_IMAGE = "ghcr.io/huggingface/text-generation-inference:2.4.1"
TGI_MIN_VERSION = (2, 0, 0)
TGI_KNOWN_GOOD = ((2, 0, 0), (2, 4, 1))
# Open WebUI: ENABLE_PERSISTENT_CONFIG exists from 0.6.6 on (without it a model or engine change
# never reaches the UI); 0.6.18 is a stable 0.6 release.
WEBUI_DEFAULT_IMAGE = "ghcr.io/open-webui/open-webui:v0.6.18"
WEBUI_MIN_VERSION = (0, 6, 6)

UNPINNED_TAGS = ("latest", "main", "master", "nightly", "dev", "edge", "stable")

# --- V100 rules ---------------------------------------------------------------------------------

# Lowest compute capability at which vLLM 0.8.5 runs a quantization method (QuantizationConfig
# .get_min_capability() in vllm/model_executor/layers/quantization/: GPTQ 60, AWQ 75, Marlin kernels
# 80, FP8 80: fp8.py's Fp8Config falls back to weight-only Marlin below 8.9, so 8.0 is its minimum).
VLLM_QUANT_MIN_CC = {
    "gptq": (6, 0),
    "bitsandbytes": (7, 0),
    "gguf": (6, 0),
    "awq": (7, 5),
    "awq_marlin": (8, 0),
    "gptq_marlin": (8, 0),
    "marlin": (8, 0),
    "fp8": (8, 0),
}
# TGI quantization methods and the lowest compute capability they run at.
TGI_QUANT_MIN_CC = {
    "gptq": (7, 0),
    "bitsandbytes": (7, 0),
    "bitsandbytes-nf4": (7, 0),
    "bitsandbytes-fp4": (7, 0),
    "awq": (7, 5),
    "eetq": (7, 5),
    "marlin": (8, 0),
    "fp8": (8, 9),
}
BF16_MIN_CC = (8, 0)
FLASH_ATTENTION_MIN_CC = (8, 0)  # TGI sharded models need flash attention

VLLM_DTYPES = ("auto", "half", "float16", "bfloat16", "float32")
TGI_DTYPES = ("", "float16", "bfloat16")
VLLM_BLOCK_SIZES = (8, 16, 32)

# Flags the roles set themselves; a second copy in extra args could disagree with them.
VLLM_OWNED_FLAGS = {
    "--model": "vllm_model", "--served-model-name": "vllm_served_model_name",
    "--tensor-parallel-size": "vllm_gpu_count", "-tp": "vllm_gpu_count",
    "--dtype": "vllm_dtype", "--quantization": "vllm_quantization", "-q": "vllm_quantization",
    "--max-model-len": "vllm_max_model_len",
    "--gpu-memory-utilization": "vllm_gpu_memory_utilization",
    "--max-num-seqs": "vllm_max_num_seqs", "--block-size": "vllm_block_size",
    "--swap-space": "vllm_swap_space", "--enforce-eager": "vllm_enforce_eager",
    "--api-key": "vllm_api_key", "--host": "(fixed 0.0.0.0)", "--port": "(fixed 8000)",
    "--download-dir": "vllm_cache_size (the cache PVC)",
    "--pipeline-parallel-size": "vllm_gpu_count (one node, tensor parallel only)",
    "-pp": "vllm_gpu_count (one node, tensor parallel only)",
}
TGI_OWNED_FLAGS = {
    "--model-id": "tgi_model", "--port": "(fixed 8000)", "--hostname": "(fixed 0.0.0.0)",
    "--quantize": "tgi_quantize", "--dtype": "tgi_dtype",
    "--num-shard": "tgi_gpu_count", "--sharded": "tgi_gpu_count",
    "--max-input-tokens": "tgi_max_input_tokens", "--max-input-length": "tgi_max_input_tokens",
    "--max-total-tokens": "tgi_max_total_tokens",
    "--max-batch-prefill-tokens": "tgi_max_batch_prefill_tokens",
    "--cuda-memory-fraction": "tgi_cuda_memory_fraction",
    "--max-concurrent-requests": "tgi_max_concurrent_requests",
    "--huggingface-hub-cache": "(fixed /data)",
}

# NCCL environment of the original config (configs/config.v100.sh); the fallback switches for
# hangs (P2P and InfiniBand off) are selected by <role>_nccl_fallback.
NCCL_ENV = {
    "NCCL_DEBUG": "INFO",
    "NCCL_P2P_DISABLE": "0",
    "NCCL_IB_DISABLE": "0",
    "NCCL_P2P_LEVEL": "NVL",
    "NCCL_SOCKET_IFNAME": "^lo,docker",
    "NCCL_SHM_DISABLE": "0",
}
NCCL_FALLBACK_ENV = {"NCCL_P2P_DISABLE": "1", "NCCL_IB_DISABLE": "1"}

# --- Syntax -------------------------------------------------------------------------------------

_HF_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_HF_MODEL = re.compile(r"^%s(/%s)?$" % (_HF_PART, _HF_PART))
_SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)([eE][0-9]+|[mkMGTPE]|[KMGTPE]i)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[a-f0-9]{64}))?$")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
_SAFE_ARG = re.compile(r"^[^\x00-\x1f]*$")


class Report(object):
    """Errors and warnings collected by one check."""

    def __init__(self):
        self.errors = []
        self.warnings = []

    def refuse(self, variable, value, problem, use_instead=None):
        self.errors.append(InputError(variable, value, problem, use_instead))

    def warn(self, text):
        self.warnings.append(text)

    def as_dict(self):
        return {"ok": not self.errors, "errors": [str(e) for e in self.errors],
                "variables": [e.variable for e in self.errors], "warnings": list(self.warnings)}


# --- Small validators (each returns True when the value is fine) --------------------------------

def is_quantity(value):
    return isinstance(value, str) and bool(_QUANTITY.match(value))


def quantity_bytes(value):
    """Kubernetes quantity -> number (bytes for memory, cores for cpu); refuses what is_quantity refuses."""
    if not is_quantity(str(value)):
        raise ValueError("not a quantity: %r" % (value,))
    return quantity(str(value))


def parse_image(image):
    """Return (name, tag, digest) of an image reference or None when it is not one."""
    if not isinstance(image, str):
        return None
    match = _IMAGE.match(image)
    if not match:
        return None
    return match.group("name"), match.group("tag"), match.group("digest")


def image_version(image):
    """Version tuple of the image tag (v0.8.5 -> (0, 8, 5)), or None."""
    parsed = parse_image(image)
    if not parsed or not parsed[1]:
        return None
    match = _VERSION.match(parsed[1])
    if not match:
        return None
    return tuple(int(g or 0) for g in match.groups())


def _fmt_version(version):
    return ".".join(str(p) for p in version)


def check_image(report, variable, image, default):
    parsed = parse_image(image)
    if parsed is None:
        report.refuse(variable, image, "not a container image reference",
                      "a pinned reference such as %r" % default)
        return None
    _name, tag, digest = parsed
    if digest:
        return parsed
    if not tag:
        report.refuse(variable, image, "the image has no tag, so it floats to 'latest'",
                      "a pinned version tag such as %r" % default)
    elif tag.lower() in UNPINNED_TAGS:
        report.refuse(variable, image, "the tag %r is not pinned (it changes under you)" % tag,
                      "a pinned version tag such as %r" % default)
    return parsed


def check_dns_label(report, variable, value, max_len=63):
    if not isinstance(value, str) or not _DNS_LABEL.match(value) or len(value) > max_len:
        report.refuse(variable, value, "not a valid Kubernetes name (RFC 1123 label, at most %d "
                      "characters)" % max_len, "lower-case letters, digits and '-', e.g. 'my-llm'")
        return False
    return True


def check_port(report, variable, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        report.refuse(variable, value, "not a TCP port", "a number from 1 to 65535")


def check_quantity(report, variable, value, example, memory=True):
    if not is_quantity(value):
        report.refuse(variable, value, "not a Kubernetes quantity",
                      "a quantity such as %r (binary suffixes Ki, Mi, Gi; decimal k, M, G)" % example)
        return None
    amount = quantity_bytes(value)
    if amount <= 0:
        report.refuse(variable, value, "must be more than zero", "a quantity such as %r" % example)
        return None
    if memory and amount < 2 ** 20:
        report.refuse(variable, value, "is less than one MiB (a memory quantity without a unit is "
                      "in bytes)", "a quantity with a unit such as %r" % example)
        return None
    return amount


_WHOLE = re.compile(r"^[+-]?[0-9]+$")


def like_default(value, default):
    """A role variable as the type of its default: ``-e vllm_max_num_seqs=16`` gives Ansible the string
    '16', which is the number 16 as Ansible's own argument specs read it (and 'false' a boolean for a
    true/false default). Anything else is left for the rules to refuse."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    text = value.strip()
    if isinstance(default, bool):
        try:
            return boolean(text, strict=True)
        except TypeError:
            return value
    if isinstance(default, int):
        return int(text) if _WHOLE.match(text) else value
    if isinstance(default, float):
        try:
            return float(text) if text.lower() not in ("nan", "inf", "-inf", "+inf", "infinity") else value
        except ValueError:
            return value
    return value


def check_int(report, variable, value, low, high=None, use=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        rng = "from %d to %d" % (low, high) if high is not None else "of at least %d" % low
        report.refuse(variable, value, "must be a whole number %s" % rng, use or "a number %s" % rng)
        return False
    return True


def check_fraction(report, variable, value, low=0.05, high=1.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        report.refuse(variable, value, "must be a fraction from %s to %s" % (low, high),
                      "a value such as 0.9")
        return False
    return True


def is_model_id(value):
    """A Hugging Face model id (``org/name`` or ``name``) as the engine rules accept it."""
    return isinstance(value, str) and bool(_HF_MODEL.match(value)) and ".." not in value


def check_model(report, variable, value):
    if not is_model_id(value):
        report.refuse(variable, value, "not a Hugging Face model id (letters, digits, '.', '_', '-', "
                      "at most one '/'; no spaces or shell characters)",
                      "an id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'")
        return False
    return True


def gpu_facts(report, variable, gpu_type):
    info = GPU_TYPES.get(gpu_type) if isinstance(gpu_type, str) else None
    if info is None:
        report.refuse(variable, gpu_type, "not a GPU type of the ICC", " or ".join(sorted(GPU_TYPES)))
    return info


def check_gpu_count(report, variable, count, info):
    high = info["max_per_node"] if info else 4
    return check_int(report, variable, count, 1, high,
                     "1 to %d (all GPUs of a pod must be on one node)" % high)


# How each engine splits attention over tensor-parallel GPUs (tp = the GPU count), from the pinned
# sources:
# - vLLM 0.8.5: ModelConfig.verify_with_parallel_config refuses heads % tp != 0 ("Total number of
#   attention heads (9) must be divisible by tensor parallel size (2)"); QKVParallelLinear splits
#   the KV heads when there are at least tp of them and replicates them otherwise, asserting
#   kv % tp == 0 or tp % kv == 0.
# - TGI 2.4.1 (server/text_generation_server/models/custom_modeling/flash_llama_modeling.py,
#   FlashLlamaAttention.__init__): "`num_heads` must be divisible by `num_shards`" and the KV heads
#   are divided by the shard count (num_key_value_heads // num_shards), so both must divide.
TP_RULES = {
    "vllm": ("the attention heads must divide by it, and the KV heads must divide by it or divide it",
             lambda heads, kv, tp: heads % tp == 0 and (kv % tp == 0 or tp % kv == 0)),
    "tgi": ("the attention heads and the KV heads must both divide by it",
            lambda heads, kv, tp: heads % tp == 0 and kv % tp == 0),
}
ENGINE_NAMES = {"vllm": "vLLM", "tgi": "TGI"}


def tensor_parallel_sizes(engine, heads, kv_heads, max_count):
    """The GPU counts from 1 to ``max_count`` that ``engine`` can split these heads over."""
    allowed = TP_RULES[engine][1]
    return [tp for tp in range(1, max_count + 1) if allowed(heads, kv_heads, tp)]


def check_tensor_parallel(report, engine, variable, model, count, info, facts=None):
    """Refuse a GPU count (the tensor-parallel size) that ``engine`` cannot split the model's
    attention heads over (the heads of the Hub's ``facts``, else of the fallback table); warn when
    the heads of the model are not known."""
    if not isinstance(count, int) or count <= 1 or not isinstance(model, str) or not model:
        return
    facts = model_size_hint(model, facts) or {}
    if "heads" not in facts:
        report.warn("%s=%d: the attention heads of %s are not known to this collection, so it cannot check "
                    "that %s can split them over %d GPUs (they must divide by the GPU count); if the server "
                    "refuses the tensor-parallel size, use a count that divides the model's "
                    "num_attention_heads and num_key_value_heads (its config.json)."
                    % (variable, count, model, ENGINE_NAMES[engine], count))
        return
    rule, allowed = TP_RULES[engine]
    if allowed(facts["heads"], facts["kv_heads"], count):
        return
    sizes = tensor_parallel_sizes(engine, facts["heads"], facts["kv_heads"], info["max_per_node"] if info else 4)
    report.refuse(variable, count, "%s has %d attention heads and %d KV heads, and %s cannot split them over "
                  "%d GPUs (%s)" % (model, facts["heads"], facts["kv_heads"], ENGINE_NAMES[engine], count, rule),
                  "%s (the GPU counts this model allows on one node)"
                  % " or ".join(str(n) for n in sizes))


_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _is_flag(token):
    return token.startswith("-") and not _NUMBER.match(token)


def check_extra_args(report, variable, extra, owned, flags=None, program=None, underscores=False):
    """Extra command-line arguments of an engine: a list of strings; no flag the role sets itself
    (``owned``: flag -> role variable); with ``flags`` (the engine's flag table, flag -> (values,
    choices)) every flag must be one of the engine's, with as many values as it takes and a value among
    its choices, so that the engine's own parser would accept them (``program`` names it in the
    refusal; ``underscores``: the engine reads ``--max_model_len`` as ``--max-model-len``, as vLLM's
    FlexibleArgumentParser does)."""
    if extra is None:
        return []
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        report.refuse(variable, extra, "must be a list of strings", "a list such as ['--seed', '1']")
        return []
    unsafe = [a for a in extra if not _SAFE_ARG.match(a)]
    for arg in unsafe:  # values too: a newline in one could smuggle a second flag into the pod spec
        report.refuse(variable, arg, "contains control characters", "plain text arguments")
    if unsafe:
        return extra
    i = 0
    while i < len(extra):
        arg = extra[i]
        i += 1
        if not _is_flag(arg):
            if flags is not None:
                report.refuse(variable, arg, "is a value without a flag before it", "flags and their values, "
                              "such as ['--seed', '1']")
            continue
        flag, sep, inline = arg.partition("=")
        name = flag.replace("_", "-") if underscores and flag.startswith("--") else flag
        if name in owned or flag in owned or (flags is not None and name not in flags):
            if name in owned or flag in owned:
                report.refuse(variable, arg, "%s is set by the role; a second value could disagree with "
                              "it" % flag, "the role variable %s" % owned.get(name, owned.get(flag)))
            else:
                report.refuse(variable, flag, "not a flag of %s: its own parser would stop the pod (unrecognized "
                              "arguments)" % program, "a flag of %s (see its --help), or none" % program)
            while not sep and i < len(extra) and not _is_flag(extra[i]):  # its values: refused with it
                i += 1
            continue
        else:
            values, choices = (flags or {}).get(name, (None, None))
            if values == 0 and sep:
                report.refuse(variable, arg, "%s is a switch of %s and takes no value" % (flag, program),
                              "%s alone" % flag)
            elif values == 1 or values == "+":
                given = [inline] if sep else []
                if not sep and i < len(extra) and not _is_flag(extra[i]):
                    given, i = [extra[i]], i + 1
                if not given:
                    report.refuse(variable, flag, "needs a value in %s" % program, "['%s', '<value>']" % flag)
                elif choices and given[0] not in choices:
                    report.refuse(variable, "%s %s" % (flag, given[0]), "not a value %s accepts for %s" % (
                        program, flag), "one of %s" % ", ".join(choices))
            if values in ("+", "*", "?"):
                while i < len(extra) and not _is_flag(extra[i]) and (values != "?" or not sep):
                    i += 1
                    if values == "?":
                        break
    return extra


_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def check_annotations(report, variable, annotations):
    """Extra pod annotations: a dict of string keys (optional DNS-subdomain prefix and '/', then a name
    of up to 63 characters) and string values. The prefix haw-icc.de is the role's own."""
    if annotations in (None, ""):
        return {}
    if not isinstance(annotations, dict):
        report.refuse(variable, annotations, "is not a dict", "a dict of annotation keys and string values, "
                      "e.g. {prometheus.io/scrape: 'true'}")
        return {}
    for key, value in annotations.items():
        prefix, _sep, name = key.rpartition("/") if isinstance(key, str) else ("", "", None)
        if name is None or not _ANNOTATION_NAME.match(name) or (_sep and not _DNS_NAME.match(prefix)):
            report.refuse(variable, key, "is not an annotation key", "[prefix/]name: an optional DNS "
                          "subdomain and '/', then up to 63 letters, digits, '-', '_' or '.'")
        elif prefix == "haw-icc.de":
            report.refuse(variable, key, "uses the prefix the role sets itself", "a key with another prefix")
        if not isinstance(value, str):
            report.refuse(variable, "%s: %r" % (key, value), "the value is not a string",
                          "a quoted string, e.g. '%s'" % str(value).lower() if isinstance(value, bool) else "a quoted string")
    return annotations


def check_common(report, cfg, prefix, default_image, port_var="service_port"):
    check_dns_label(report, prefix + "name", cfg.get("name"), max_len=40)
    check_dns_label(report, prefix + "namespace", cfg.get("namespace"))
    check_image(report, prefix + "image", cfg.get("image"), default_image)
    check_port(report, prefix + port_var, cfg.get(port_var))
    cpu = check_quantity(report, prefix + "cpu", cfg.get("cpu"), "4", memory=False)
    if cpu is not None and cpu < 0.1:
        report.refuse(prefix + "cpu", cfg.get("cpu"), "is less than 100m", "at least '1' for an LLM server")
    if not (prefix == "vllm_" and cfg.get("memory") in ("", None)):  # vLLM: '' = vllm_memory_limit()
        check_quantity(report, prefix + "memory", cfg.get("memory"), "16Gi")
    if cfg.get("storage_class") not in (None, "") and not (
            isinstance(cfg["storage_class"], str) and _DNS_NAME.match(cfg["storage_class"])):
        report.refuse(prefix + "storage_class", cfg.get("storage_class"), "not a StorageClass name",
                      "an empty string (the cluster default) or a lower-case name")
    check_int(report, prefix + "wait_timeout", cfg.get("wait_timeout"), 30, 86400,
              "seconds from 30 to 86400")
    check_int(report, prefix + "unschedulable_grace", cfg.get("unschedulable_grace", 120), 1, 86400,
              "seconds from 1 to 86400, e.g. 120")
    check_annotations(report, prefix + "pod_annotations", cfg.get("pod_annotations"))


def _version_rules(report, variable, image, known_good, minimum=None, what="", default=None):
    version = image_version(image)
    if version is None:
        if image and parse_image(image) and not (parse_image(image)[2]):
            report.warn("%s=%s: the tag is not a version, so it cannot be checked against the "
                        "versions known to work on V100 (%s)." % (variable, image, what))
        return
    if minimum and version < minimum:
        report.refuse(variable, image, "version %s is older than %s, the first version with %s"
                      % (_fmt_version(version), _fmt_version(minimum), what), "%r" % default)
        return
    low, high = known_good
    if not low <= version <= high:
        report.warn("%s=%s: version %s is outside the range known to work on V100 (%s to %s); "
                    "it may fail only after a long image pull. The default is %s."
                    % (variable, image, _fmt_version(version), _fmt_version(low), _fmt_version(high),
                       default))


def _storage(report, cfg, prefix):
    if not cfg.get("cache_emptydir"):
        check_quantity(report, prefix + "cache_size", cfg.get("cache_size"), "50Gi")


def _startup(report, cfg, prefix):
    check_int(report, prefix + "startup_timeout", cfg.get("startup_timeout"), 60, 6 * 3600,
              "seconds from 60 to 21600 (default 2400: a first image pull plus a model download)")


def _shm(report, cfg, prefix):
    if cfg.get("shm_size") not in (None, ""):
        check_quantity(report, prefix + "shm_size", cfg.get("shm_size"), "8Gi")


# --- vLLM ---------------------------------------------------------------------------------------

def check_vllm(cfg, facts=None):
    """Check a vLLM configuration (keys without the ``vllm_`` prefix). Returns a :class:`Report`."""
    report = Report()
    p = "vllm_"
    check_common(report, cfg, p, VLLM_DEFAULT_IMAGE)
    _version_rules(report, p + "image", cfg.get("image"), VLLM_KNOWN_GOOD,
                   what="the V0 engine and sm70 kernels", default=VLLM_DEFAULT_IMAGE)
    check_model(report, p + "model", cfg.get("model"))
    served = cfg.get("served_model_name")
    if served not in (None, "") and not (isinstance(served, str) and _SERVED_NAME.match(served)):
        report.refuse(p + "served_model_name", served, "not a usable model name (letters, digits, "
                      "'.', '_', '-', '/', ':'; no spaces or shell characters)", "the model id")
    info = gpu_facts(report, p + "gpu_type", cfg.get("gpu_type"))
    if check_gpu_count(report, p + "gpu_count", cfg.get("gpu_count"), info):
        check_tensor_parallel(report, "vllm", p + "gpu_count", cfg.get("model"), cfg["gpu_count"], info, facts)
    cc = info["compute_capability"] if info else (7, 0)
    dtype = cfg.get("dtype")
    if dtype not in VLLM_DTYPES:
        report.refuse(p + "dtype", dtype, "not a dtype of vLLM", "auto (half on V100) or half")
    elif dtype == "bfloat16" and cc < BF16_MIN_CC:
        report.refuse(p + "dtype", dtype, "bfloat16 needs compute capability 8.0; %s has %s"
                      % (cfg.get("gpu_type"), _fmt_version(cc)), "half (float16) or auto")
    elif dtype == "float32":
        report.warn("vllm_dtype=float32 doubles the memory of the weights; half is the V100 choice.")
    quant = cfg.get("quantization") or ""
    if quant:
        need = VLLM_QUANT_MIN_CC.get(quant)
        if need is None:
            report.refuse(p + "quantization", quant, "not a quantization this role knows",
                          "'' (none) or one of %s" % ", ".join(sorted(VLLM_QUANT_MIN_CC)))
        elif cc < need:
            ok = sorted(q for q, c in VLLM_QUANT_MIN_CC.items() if c <= cc)
            report.refuse(p + "quantization", quant, "vLLM needs compute capability %s for %s; "
                          "%s has %s" % (_fmt_version(need), quant, cfg.get("gpu_type"), _fmt_version(cc)),
                          "a GPTQ model with quantization 'gptq' (V100 supports %s)" % ", ".join(ok))
    model = cfg.get("model") if isinstance(cfg.get("model"), str) else ""
    # The name-based guess when the Hub could not be read; with its facts, _model_facts.checks reads
    # the checkpoint's quantization_config instead.
    for marker, method in () if _model_facts.usable(facts) else (("awq", "awq"), ("fp8", "fp8")):
        if re.search(r"(^|[-_./])%s([-_.]|$)" % marker, model, re.I) and cc < VLLM_QUANT_MIN_CC[method] \
                and quant in ("", method):
            report.refuse(p + "model", model, "the model looks %s-quantized (vLLM detects it from the "
                          "model config) and %s needs compute capability %s; %s has %s"
                          % (method.upper(), method, _fmt_version(VLLM_QUANT_MIN_CC[method]),
                             cfg.get("gpu_type"), _fmt_version(cc)),
                          "a GPTQ or unquantized variant of the model")
    if check_int(report, p + "max_model_len", cfg.get("max_model_len"), 0, 1 << 20,
                 "a positive context length such as 4096 (0 = the model's own)"):
        pass
    check_fraction(report, p + "gpu_memory_utilization", cfg.get("gpu_memory_utilization"))
    check_int(report, p + "max_num_seqs", cfg.get("max_num_seqs"), 1, 4096)
    if cfg.get("block_size") not in VLLM_BLOCK_SIZES or isinstance(cfg.get("block_size"), bool):
        report.refuse(p + "block_size", cfg.get("block_size"), "not a block size of vLLM on CUDA",
                      "8, 16 or 32")
    if check_int(report, p + "swap_space", cfg.get("swap_space"), 0, 256, "GiB from 0 to 256"):
        _host_memory(report, cfg, p)
    if not isinstance(cfg.get("enforce_eager"), bool):
        report.refuse(p + "enforce_eager", cfg.get("enforce_eager"), "must be true or false", "true")
    check_extra_args(report, p + "extra_args", cfg.get("extra_args"), VLLM_OWNED_FLAGS, VLLM_FLAGS,
                     "vLLM %s" % VLLM_FLAGS_VERSION, underscores=True)
    _storage(report, cfg, p)
    _startup(report, cfg, p)
    _shm(report, cfg, p)
    if info and isinstance(cfg.get("gpu_count"), int) and cfg.get("gpu_count", 1) > 1 \
            and not cfg.get("enforce_eager"):
        report.warn("vllm_enforce_eager=false with tensor parallelism on V100: CUDA graphs need "
                    "extra memory per GPU; set it to true if the server runs out of memory.")
    return report


# vLLM pins vllm_swap_space GiB of host memory in every tensor-parallel worker (the CPU KV-cache
# blocks of worker/cache_engine.py, one pinned tensor per layer; CacheConfig counts swap x TP), besides
# what its processes need themselves. The pod's memory limit has to hold both, or a 4-GPU pod with the
# default swap (4 x 4 GiB) is OOM-killed as it starts.
VLLM_HOST_BASE_GIB = 12  # the default limit on top of the pinned swap: 16Gi for one GPU, as before
VLLM_HOST_MIN_GIB = 4    # the least a limit may leave beside the pinned swap


def vllm_pinned_gib(cfg):
    """GiB of host memory vLLM pins for swap: vllm_swap_space per tensor-parallel worker."""
    return int(cfg.get("swap_space") or 0) * max(1, int(cfg.get("gpu_count") or 1))


def vllm_memory_limit(cfg):
    """The engine container's memory (request = limit): vllm_memory, or '' for the pinned swap plus
    VLLM_HOST_BASE_GIB."""
    if cfg.get("memory") not in ("", None):
        return cfg["memory"]
    return "%dGi" % (vllm_pinned_gib(cfg) + VLLM_HOST_BASE_GIB)


def _host_memory(report, cfg, p):
    if not isinstance(cfg.get("gpu_count"), int) or cfg.get("memory") in ("", None) \
            or not is_quantity(cfg.get("memory")):
        return
    pinned = vllm_pinned_gib(cfg)
    need = (pinned + VLLM_HOST_MIN_GIB) * 2 ** 30
    if 2 ** 20 <= quantity_bytes(cfg["memory"]) < need:  # smaller ones: check_quantity refuses them
        report.refuse(p + "memory", cfg["memory"], "vLLM pins %d GiB of host memory for swap (vllm_swap_space %s GiB x "
                      "%s GPUs) and needs at least %d GiB more for itself" % (
                          pinned, cfg.get("swap_space"), cfg.get("gpu_count"), VLLM_HOST_MIN_GIB),
                      "at least '%dGi', '' (the default: %dGi for these settings), or a smaller vllm_swap_space"
                      % (pinned + VLLM_HOST_MIN_GIB, pinned + VLLM_HOST_BASE_GIB))


def vllm_args(cfg):
    """The vLLM command line (``vllm serve`` options) for a checked configuration."""
    info = GPU_TYPES.get(cfg.get("gpu_type"), {"compute_capability": (8, 0)})
    dtype = cfg.get("dtype") or "auto"
    if dtype == "float16":
        dtype = "half"
    if dtype == "auto" and info["compute_capability"] < BF16_MIN_CC:
        dtype = "half"
    args = ["--model", cfg["model"],
            "--served-model-name", cfg.get("served_model_name") or cfg["model"],
            "--tensor-parallel-size", str(cfg["gpu_count"]),
            "--dtype", dtype,
            "--host", "0.0.0.0", "--port", "8000"]
    if cfg.get("quantization"):
        args += ["--quantization", cfg["quantization"]]
    if cfg.get("max_model_len"):
        args += ["--max-model-len", str(cfg["max_model_len"])]
    args += ["--gpu-memory-utilization", str(cfg["gpu_memory_utilization"]),
             "--max-num-seqs", str(cfg["max_num_seqs"]),
             "--block-size", str(cfg["block_size"]),
             "--swap-space", str(cfg["swap_space"])]
    if cfg.get("enforce_eager"):
        args.append("--enforce-eager")
    args += list(cfg.get("extra_args") or [])
    return args


# --- TGI ----------------------------------------------------------------------------------------

def check_tgi(cfg, facts=None):
    """Check a TGI configuration (keys without the ``tgi_`` prefix). Returns a :class:`Report`."""
    report = Report()
    p = "tgi_"
    check_common(report, cfg, p, TGI_DEFAULT_IMAGE)
    _version_rules(report, p + "image", cfg.get("image"), TGI_KNOWN_GOOD, TGI_MIN_VERSION,
                   what="the Messages API and --max-input-tokens", default=TGI_DEFAULT_IMAGE)
    check_model(report, p + "model", cfg.get("model"))
    info = gpu_facts(report, p + "gpu_type", cfg.get("gpu_type"))
    count_ok = check_gpu_count(report, p + "gpu_count", cfg.get("gpu_count"), info)
    cc = info["compute_capability"] if info else (7, 0)
    if count_ok and cfg["gpu_count"] > 1 and cc < FLASH_ATTENTION_MIN_CC:
        if cfg.get("allow_sharding_on_v100") is True:
            check_tensor_parallel(report, "tgi", p + "gpu_count", cfg.get("model"), cfg["gpu_count"], info, facts)
            report.warn("tgi_allow_sharding_on_v100=true: TGI shards only flash-attention models, "
                        "and %s (compute capability %s) has no flash attention; the server will most "
                        "likely fail to start with %d shards. Use vllm with tensor parallelism for "
                        "multi-GPU on V100." % (cfg.get("gpu_type"), _fmt_version(cc), cfg["gpu_count"]))
        else:
            report.refuse(p + "gpu_count", cfg["gpu_count"], "TGI cannot shard a model over several "
                          "GPUs of compute capability %s (no flash attention on %s)"
                          % (_fmt_version(cc), cfg.get("gpu_type")),
                          "1, or the vllm role for several GPUs (tgi_allow_sharding_on_v100: true "
                          "forces it, at your own risk)")
    quant = cfg.get("quantize") or ""
    dtype = cfg.get("dtype") or ""
    if quant:
        need = TGI_QUANT_MIN_CC.get(quant)
        if need is None:
            report.refuse(p + "quantize", quant, "not a quantization this role knows",
                          "'' (none) or one of %s" % ", ".join(sorted(TGI_QUANT_MIN_CC)))
        elif cc < need:
            ok = sorted(q for q, c in TGI_QUANT_MIN_CC.items() if c <= cc)
            report.refuse(p + "quantize", quant, "TGI needs compute capability %s for %s; %s has %s"
                          % (_fmt_version(need), quant, cfg.get("gpu_type"), _fmt_version(cc)),
                          "one of %s" % ", ".join(ok))
    if dtype not in TGI_DTYPES:
        report.refuse(p + "dtype", dtype, "not a dtype of TGI", "'' (float16 on V100) or float16")
    elif dtype == "bfloat16" and cc < BF16_MIN_CC:
        report.refuse(p + "dtype", dtype, "bfloat16 needs compute capability 8.0; %s has %s"
                      % (cfg.get("gpu_type"), _fmt_version(cc)), "float16 or ''")
    elif dtype and quant:
        report.refuse(p + "dtype", dtype, "TGI takes --quantize or --dtype, never both (tgi_quantize=%r)"
                      % quant, "'' when tgi_quantize is set")
    mi = check_int(report, p + "max_input_tokens", cfg.get("max_input_tokens"), 1, 1 << 20)
    mt = check_int(report, p + "max_total_tokens", cfg.get("max_total_tokens"), 2, 1 << 20)
    mp = check_int(report, p + "max_batch_prefill_tokens", cfg.get("max_batch_prefill_tokens"), 1, 1 << 22)
    if mi and mt and cfg["max_input_tokens"] >= cfg["max_total_tokens"]:
        report.refuse(p + "max_input_tokens", cfg["max_input_tokens"], "must be less than "
                      "tgi_max_total_tokens (%d): the answer needs room" % cfg["max_total_tokens"],
                      "for example %d" % max(1, cfg["max_total_tokens"] // 2))
    if mi and mp and cfg["max_batch_prefill_tokens"] < cfg["max_input_tokens"]:
        report.refuse(p + "max_batch_prefill_tokens", cfg["max_batch_prefill_tokens"],
                      "must be at least tgi_max_input_tokens (%d)" % cfg["max_input_tokens"],
                      "%d or more" % cfg["max_input_tokens"])
    check_fraction(report, p + "cuda_memory_fraction", cfg.get("cuda_memory_fraction"))
    check_int(report, p + "max_concurrent_requests", cfg.get("max_concurrent_requests"), 1, 100000)
    check_extra_args(report, p + "extra_args", cfg.get("extra_args"), TGI_OWNED_FLAGS, TGI_FLAGS,
                     "TGI %s's launcher" % TGI_FLAGS_VERSION)
    _storage(report, cfg, p)
    _startup(report, cfg, p)
    _shm(report, cfg, p)
    return report


def tgi_args(cfg):
    """The text-generation-launcher command line for a checked configuration."""
    args = ["--model-id", cfg["model"], "--hostname", "0.0.0.0", "--port", "8000",
            "--huggingface-hub-cache", "/data"]
    if cfg.get("quantize"):
        args += ["--quantize", cfg["quantize"]]
    else:
        args += ["--dtype", cfg.get("dtype") or "float16"]
    args += ["--max-input-tokens", str(cfg["max_input_tokens"]),
             "--max-total-tokens", str(cfg["max_total_tokens"]),
             "--max-batch-prefill-tokens", str(cfg["max_batch_prefill_tokens"]),
             "--cuda-memory-fraction", str(cfg["cuda_memory_fraction"]),
             "--max-concurrent-requests", str(cfg["max_concurrent_requests"])]
    if cfg["gpu_count"] > 1:
        args += ["--sharded", "true", "--num-shard", str(cfg["gpu_count"])]
    args += list(cfg.get("extra_args") or [])
    return args


# --- Open WebUI ---------------------------------------------------------------------------------

def check_webui(cfg):
    """Check an Open WebUI configuration (keys without ``webui_``). Returns a :class:`Report`."""
    report = Report()
    p = "webui_"
    check_common(report, cfg, p, WEBUI_DEFAULT_IMAGE)
    _version_rules(report, p + "image", cfg.get("image"), ((0, 6, 6), (0, 6, 99)), WEBUI_MIN_VERSION,
                   what="ENABLE_PERSISTENT_CONFIG", default=WEBUI_DEFAULT_IMAGE)
    url = cfg.get("openai_api_base_url")
    if not isinstance(url, str) or not _URL.match(url):
        report.refuse(p + "openai_api_base_url", url, "not an http(s) URL",
                      "the engine Service URL such as 'http://vllm:8000/v1'")
    elif not url.rstrip("/").endswith("/v1"):
        report.warn("webui_openai_api_base_url=%s does not end in /v1; OpenAI-compatible engines "
                    "serve their API under /v1." % url)
    key_secret = cfg.get("openai_api_key_secret")
    if key_secret not in (None, ""):
        check_dns_label(report, p + "openai_api_key_secret", key_secret, max_len=253)
    check_quantity(report, p + "data_size", cfg.get("data_size"), "5Gi")
    _startup(report, cfg, p)
    if cfg.get("ingress_enabled"):
        host = cfg.get("ingress_host")
        if not isinstance(host, str) or not _DNS_NAME.match(host) or "." not in host:
            report.refuse(p + "ingress_host", host, "not a DNS host name",
                          "a host such as 'mychat.informatik.haw-hamburg.de'")
        check_dns_label(report, p + "ingress_class", cfg.get("ingress_class"))
        if cfg.get("ingress_issuer") not in (None, ""):
            check_dns_label(report, p + "ingress_issuer", cfg.get("ingress_issuer"))
    return report


# --- Manifest helpers ---------------------------------------------------------------------------

def shm_size(cfg):
    """/dev/shm size: the configured one or 8Gi per GPU (NCCL needs room for tensor parallel)."""
    if cfg.get("shm_size"):
        return cfg["shm_size"]
    return "%dGi" % (8 * int(cfg.get("gpu_count") or 1))


def node_affinity(gpu_type):
    """Required node affinity on the GFD product label of an ICC GPU type."""
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
        "matchExpressions": [{"key": GFD_PRODUCT, "operator": "In",
                              "values": [GPU_TYPES[gpu_type]["product"]]}]}]}}


def gpu_toleration(gpu_type):
    return {"key": gpu_type, "operator": "Exists", "effect": "NoSchedule"}


def gpu_resources(count, cpu, memory):
    """Requests equal to limits (GPU count, CPU, memory)."""
    res = {GPU_RESOURCE: str(count), "cpu": str(cpu), "memory": str(memory)}
    return {"requests": dict(res), "limits": dict(res)}


# TGI 2.4.1's launcher (launcher/src/main.rs, resolve_attention) picks ATTENTION=flashinfer and
# PREFIX_CACHING=true for llama/mistral-type models (head size 64/128/256) whatever the GPU; flashinfer
# and the image's custom kernels target compute capability 8.0+. "paged" is the launcher's own fallback
# below 8.0, and prefix caching needs flashinfer or flashdecoding (server/.../models/globals.py), so it
# is switched off with it. Not proven on a V100 GPU: the sandbox has none.
TGI_V100_ENV = {"ATTENTION": "paged", "PREFIX_CACHING": "0"}


def tgi_env():
    """The env that keeps TGI 2.4.1 off its sm80-only attention paths (TGI_V100_ENV), as pod env items."""
    return [{"name": k, "value": v} for k, v in sorted(TGI_V100_ENV.items())]


def nccl_env(fallback=False):
    env = dict(NCCL_ENV)
    if fallback:
        env.update(NCCL_FALLBACK_ENV)
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


CHECKS = {"vllm": check_vllm, "tgi": check_tgi, "webui": check_webui}


def check(kind, cfg, facts=None):
    """Check the configuration of ``kind`` (vllm, tgi, webui); returns the report as a dict.
    ``facts``: the Hub's facts of the model (``_model_facts``), for the engines."""
    if kind not in CHECKS:
        raise InputError("kind", kind, "not a component of this collection", "vllm, tgi or webui")
    if kind == "webui":
        return CHECKS[kind](dict(cfg or {})).as_dict()
    return CHECKS[kind](dict(cfg or {}), facts).as_dict()
