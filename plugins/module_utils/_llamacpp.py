# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules and the command line of llama.cpp's ``llama-server``, the engine ``llamacpp`` of the
registry (``_engines.Llamacpp``). One file for the engine, built from the shared validators of
``_engine``; nothing of the vLLM or TGI rules changes for it.

Facts (docs/research/llamacpp.md): build b11312 (commit 0c1e57098, the llama.cpp that the pinned
llama-cpp-python 0.3.36 vendors); only its CUDA 12 images carry compute capability 7.0 (as PTX,
``70-virtual``, ggml/src/ggml-cuda/CMakeLists.txt), the CUDA 13 ones do not; ``--api-key`` reads
``LLAMA_API_KEY``; ``-c`` is the context of all ``-np`` slots together.

Pure: a role configuration (the ``llamacpp_*`` variables without the prefix) in, a report or a
command line out."""

from __future__ import annotations

import re

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _memory
from ansible_collections.haw_icc.llm.plugins.module_utils._flags_llamacpp import LLAMACPP_FLAGS

PREFIX = "llamacpp_"
BUILD = 11312
DEFAULT_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-cuda12-b%d" % BUILD
API_KEY_ENV = "LLAMA_API_KEY"
CACHE_PATH = "/models"  # the model cache PVC; LLAMA_CACHE points here
PORT = 8000
# llama-server's split modes (-sm); "tensor" is marked EXPERIMENTAL by llama.cpp itself.
SPLIT_MODES = ("layer", "row", "tensor")
FLASH_ATTN = ("auto", "on", "off")
# Flags the role sets itself: flag -> the role variable to use instead.
OWNED_FLAGS = {
    "-m": "llamacpp_model", "--model": "llamacpp_model", "-hf": "llamacpp_model", "-hfr": "llamacpp_model",
    "--hf-repo": "llamacpp_model", "-hff": "llamacpp_model_file", "--hf-file": "llamacpp_model_file",
    "-a": "llamacpp_served_model_name", "--alias": "llamacpp_served_model_name",
    "-c": "llamacpp_ctx_size", "--ctx-size": "llamacpp_ctx_size",
    "-np": "llamacpp_parallel", "--parallel": "llamacpp_parallel",
    "-ngl": "llamacpp_gpu_layers", "--gpu-layers": "llamacpp_gpu_layers", "--n-gpu-layers": "llamacpp_gpu_layers",
    "-sm": "llamacpp_split_mode", "--split-mode": "llamacpp_split_mode",
    "-ts": "llamacpp_tensor_split", "--tensor-split": "llamacpp_tensor_split",
    "-fa": "llamacpp_flash_attn", "--flash-attn": "llamacpp_flash_attn",
    "--host": "(the role listens on 0.0.0.0)", "--port": "(the role uses port %d)" % PORT,
    "--api-key": "llamacpp_api_key / llamacpp_api_key_secret", "--api-key-file": "llamacpp_api_key_secret",
    "--metrics": "(always on)",
}
# Effective bits per weight of the GGUF quantization types (llama.cpp's quantize tool reports them
# for a 7B Llama; the file names carry the type, e.g. Qwen2.5-7B-Instruct-Q4_K_M.gguf).
GGUF_BITS = {
    "Q2_K": 3.35, "Q3_K_S": 3.5, "Q3_K_M": 3.91, "Q3_K_L": 4.27, "IQ3_XS": 3.3, "IQ3_M": 3.7,
    "IQ4_XS": 4.25, "IQ4_NL": 4.5, "Q4_0": 4.55, "Q4_K_S": 4.58, "Q4_K_M": 4.89, "Q5_0": 5.54,
    "Q5_K_S": 5.54, "Q5_K_M": 5.69, "Q6_K": 6.56, "Q8_0": 8.5, "F16": 16.0, "BF16": 16.0, "F32": 32.0,
}
_QUANT_IN_NAME = re.compile(r"(?i)(?:^|[-_.])(%s)(?:[-_.]|$)" % "|".join(
    sorted((re.escape(q) for q in GGUF_BITS), key=len, reverse=True)))
_TAG = re.compile(r"^server(?:-(?!b\d+$)(?P<backend>[a-z][a-z0-9]*))?(?:-b(?P<build>\d+))?$")
_GGUF_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}\.gguf$")


def model_spec(model):
    """``(repo, quant)`` of ``user/model`` or ``user/model:quant`` (llama-server's -hf form)."""
    repo, _sep, quant = str(model or "").partition(":")
    return repo, quant


def gguf_quant(model, model_file=""):
    """The GGUF quantization type of the file (or of ``repo:quant``), upper case, or None."""
    for text in (model_file or "", model_spec(model)[1], model_spec(model)[0]):
        match = _QUANT_IN_NAME.search(str(text).rsplit("/", 1)[-1])
        if match:
            return match.group(1).upper()
    return None


def gguf_bits(model, model_file=""):
    """Bits per weight of the GGUF file (or None when its type is not in its name)."""
    quant = gguf_quant(model, model_file)
    return GGUF_BITS.get(quant) if quant else None


def memory_fit(cfg, memory_fraction=0.9, variable_prefix=PREFIX, facts=None):
    """The memory fit of the GGUF file: its bits per weight, and the KV cache of ``ctx_size`` tokens
    (the slots share that context; llama.cpp keeps K and V in 16 bit unless told otherwise), split over
    the GPUs. The model's size comes from the Hub's ``facts`` of the repository (its GGUF parameter
    count), else from the repository's name (e.g. Qwen2.5-7B-Instruct-GGUF)."""
    repo = model_spec(cfg.get("model"))[0]
    bits = gguf_bits(cfg.get("model"), cfg.get("model_file") or "")
    return _memory.memory_fit(repo, cfg.get("gpu_type"), cfg.get("gpu_count") or 1, max_model_len=cfg.get("ctx_size"),
                              memory_fraction=memory_fraction, variable_prefix=variable_prefix, bits=bits or 16.0,
                              length_var=PREFIX + "ctx_size",
                              smaller="a smaller GGUF type (e.g. %smodel 'user/model:Q4_K_M')" % variable_prefix,
                              shared_context=True, facts=facts)


def check_image(report, image, gpu_info):
    """A server image, with a build number, whose CUDA build carries the GPU's compute capability
    (``_engine.check_common`` has refused what is no image or not pinned)."""
    parsed = _engine.parse_image(image)
    if not parsed or parsed[2] or not parsed[1] or parsed[1].lower() in _engine.UNPINNED_TAGS:
        return  # refused already, or pinned by digest (the user's own choice)
    tag = parsed[1]
    match = _TAG.match(tag)
    if not match:
        report.refuse(PREFIX + "image", image, "not a llama.cpp server image tag (server-<backend>-b<build>)",
                      repr(DEFAULT_IMAGE))
        return
    backend, build = match.group("backend") or "cpu", match.group("build")
    if build is None:
        report.refuse(PREFIX + "image", image, "the tag %r has no build number, so it moves with every llama.cpp "
                      "release" % tag, "a pinned build such as %r" % DEFAULT_IMAGE)
        return
    cc = gpu_info["compute_capability"] if gpu_info else (7, 0)
    if backend == "cuda13" and cc < (7, 5):
        report.refuse(PREFIX + "image", image, "llama.cpp's CUDA 13 images are built without compute capability "
                      "%s (CUDA 13 dropped Volta), so it cannot run on %s" % (".".join(map(str, cc)), gpu_info["product"]
                                                                              if gpu_info else "a V100"),
                      "a CUDA 12 image such as %r" % DEFAULT_IMAGE)
    elif backend not in ("cuda", "cuda12", "cuda13"):
        report.refuse(PREFIX + "image", image, "the %r build does not use NVIDIA GPUs" % backend,
                      "a CUDA 12 image such as %r" % DEFAULT_IMAGE)
    elif backend == "cuda":
        report.warn("%simage=%s: 'server-cuda' is the CUDA 12 build at b%d, but llama.cpp may move that name to "
                    "CUDA 13, which has no V100 support; 'server-cuda12-b<build>' says it." % (PREFIX, image, BUILD))
    if int(build) != BUILD:
        report.warn("%simage=%s: the collection checks its rules against llama.cpp b%d; b%s may take other flags."
                    % (PREFIX, image, BUILD, build))


def check(cfg, flags=None):
    """Check a llama.cpp configuration (keys without the prefix). ``flags``: llama-server's flag table
    for ``extra_args`` (default: the one generated from the real binary, ``_flags_llamacpp``). Returns
    an ``_engine.Report``."""
    flags = LLAMACPP_FLAGS if flags is None else flags
    report = _engine.Report()
    p = PREFIX
    _engine.check_common(report, cfg, p, DEFAULT_IMAGE)
    info = _engine.gpu_facts(report, p + "gpu_type", cfg.get("gpu_type"))
    check_image(report, cfg.get("image"), info)
    repo, quant = model_spec(cfg.get("model"))
    model_file = cfg.get("model_file") or ""
    if _engine.check_model(report, p + "model", repo):
        if quant and model_file:
            report.refuse(p + "model_file", model_file, "the model %r names a quantization already" % cfg.get("model"),
                          "either llamacpp_model 'user/model:Q4_K_M' or llamacpp_model_file, not both")
        elif not quant and not model_file:
            report.refuse(p + "model", cfg.get("model"), "no GGUF file chosen",
                          "'user/model:Q4_K_M', or the file in llamacpp_model_file")
        elif quant and not re.match(r"^[A-Za-z0-9_]+$", quant):
            report.refuse(p + "model", cfg.get("model"), "%r is not a quantization name" % quant,
                          "a type such as Q4_K_M")
    if model_file and not _GGUF_FILE.match(model_file):
        report.refuse(p + "model_file", model_file, "not the name of a .gguf file in the repository",
                      "a file name such as 'Qwen2.5-7B-Instruct-Q4_K_M.gguf'")
    count_ok = _engine.check_gpu_count(report, p + "gpu_count", cfg.get("gpu_count"), info)
    ctx = _engine.check_int(report, p + "ctx_size", cfg.get("ctx_size"), 256, 1 << 20)
    slots = _engine.check_int(report, p + "parallel", cfg.get("parallel"), 1, 256)
    if ctx and slots and cfg["ctx_size"] // cfg["parallel"] < 256:
        report.refuse(p + "parallel", cfg["parallel"], "leaves each slot %d tokens of llamacpp_ctx_size=%d (the "
                      "slots share the context)" % (cfg["ctx_size"] // cfg["parallel"], cfg["ctx_size"]),
                      "fewer slots or a larger llamacpp_ctx_size")
    layers = cfg.get("gpu_layers")
    if layers != "all" and not (isinstance(layers, int) and not isinstance(layers, bool) and layers >= 0):
        report.refuse(p + "gpu_layers", layers, "not a layer count", "'all' (every layer on the GPUs) or a number")
    elif layers != "all":
        report.warn("%sgpu_layers=%s: the layers not on the GPUs run on the pod's CPUs, many times slower."
                    % (p, layers))
    split = cfg.get("split_mode")
    if split not in SPLIT_MODES:
        report.refuse(p + "split_mode", split, "not a split mode of llama-server", " or ".join(SPLIT_MODES))
    elif split == "tensor":
        report.warn("%ssplit_mode=tensor: llama.cpp marks it EXPERIMENTAL." % p)
    tsplit = cfg.get("tensor_split") or ""
    if tsplit:
        parts = str(tsplit).split(",")
        if not all(re.match(r"^[0-9]+(\.[0-9]+)?$", x) for x in parts):
            report.refuse(p + "tensor_split", tsplit, "not a list of proportions", "e.g. '3,1' for two GPUs")
        elif count_ok and len(parts) != cfg["gpu_count"]:
            report.refuse(p + "tensor_split", tsplit, "has %d parts for llamacpp_gpu_count=%d"
                          % (len(parts), cfg["gpu_count"]), "one proportion per GPU, or '' for an even split")
    if cfg.get("flash_attn") not in FLASH_ATTN:
        report.refuse(p + "flash_attn", cfg.get("flash_attn"), "not a --flash-attn value", " or ".join(FLASH_ATTN))
    _engine.check_extra_args(report, p + "extra_args", cfg.get("extra_args"), OWNED_FLAGS, flags,
                             "llama-server b%d" % BUILD)
    _engine.check_int(report, p + "startup_timeout", cfg.get("startup_timeout"), 60, 6 * 3600,
                      "seconds from 60 to 21600 (default 2400: a first image pull plus a model download)")
    if not cfg.get("cache_emptydir"):
        _engine.check_quantity(report, p + "cache_size", cfg.get("cache_size"), "50Gi")
    return report


def args(cfg):
    """llama-server's command line of a checked configuration: every layer on the GPUs, one GPU or a
    split over the pod's GPUs, metrics on; the API key comes from LLAMA_API_KEY, never argv."""
    repo, quant = model_spec(cfg["model"])
    out = ["--host", "0.0.0.0", "--port", str(PORT), "--hf-repo", repo + (":" + quant if quant else "")]
    if cfg.get("model_file"):
        out += ["--hf-file", cfg["model_file"]]
    out += ["--alias", cfg.get("served_model_name") or cfg["model"],
            "--ctx-size", str(cfg["ctx_size"]), "--parallel", str(cfg["parallel"]),
            "--gpu-layers", str(cfg.get("gpu_layers", "all")), "--flash-attn", cfg.get("flash_attn") or "auto",
            "--metrics", "--no-webui"]
    if int(cfg["gpu_count"]) > 1:
        out += ["--split-mode", cfg.get("split_mode") or "layer"]
        if cfg.get("tensor_split"):
            out += ["--tensor-split", str(cfg["tensor_split"])]
    else:
        out += ["--split-mode", "none"]
    return out + list(cfg.get("extra_args") or [])


def env(cfg):
    """The engine's own environment: the model cache on the PVC, and the CUDA JIT cache beside it
    (the CUDA 12 image carries sm70 as PTX only: the driver compiles it at the first start and keeps
    the result there, so a restart does not compile again)."""
    return [{"name": "LLAMA_CACHE", "value": CACHE_PATH},
            {"name": "HF_HOME", "value": CACHE_PATH + "/huggingface"},
            {"name": "CUDA_CACHE_PATH", "value": CACHE_PATH + "/cuda-jit"},
            {"name": "CUDA_CACHE_MAXSIZE", "value": str(4 * 2 ** 30)},
            {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"}]
