# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of test_gpu.yml for one engine pod (pure; the filters ``gpu_test_*`` expose them).

``pod_spec`` reads what the pod asks for (the engine command line through the one parser,
``_live.command_settings``), ``parse_output`` splits the output of the one exec that runs
nvidia-smi, ``nvidia-smi -L``, the GPU query (CSV rows split like ``_gpu_monitor`` splits them), the
CUDA environment and ``df /dev/shm``, and ``checks`` judges them with the answer of llm_health and
the engine log (``_logs.ERRORS``)."""

from __future__ import annotations

import json
import re

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines
from ansible_collections.haw_icc.llm.plugins.module_utils._live import command_settings
from ansible_collections.haw_icc.llm.plugins.module_utils._gpu_monitor import split_csv_line
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GPU_RESOURCE
from ansible_collections.haw_icc.llm.plugins.module_utils._logs import ERRORS
from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import newest
from ansible_collections.haw_icc.llm.plugins.module_utils._text import truncate

_TP_FLAGS = ("--tensor-parallel-size", "-tp", "--num-shard")


def _count(value):
    try:
        return int(str(value))
    except ValueError:
        return 0


def pod_spec(pod):
    """What the engine pod asks for: container, GPU request and limit, the tensor-parallel size (or
    TGI's shard count), the served model, the /dev/shm size limit and the node."""
    spec = pod.get("spec") or {}
    container = (spec.get("containers") or [{}])[0]
    res = container.get("resources") or {}
    limit = _count((res.get("limits") or {}).get(GPU_RESOURCE, 0))
    request = _count((res.get("requests") or {}).get(GPU_RESOURCE, limit))
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    tp_given = any(a in _TP_FLAGS or a.split("=", 1)[0] in _TP_FLAGS for a in args)
    # llama-server splits the model over every GPU it sees unless --split-mode none.
    split = [b for a, b in zip(args, args[1:]) if a in ("--split-mode", "-sm")]
    split_over_all = bool(split) and split[-1] != "none"
    cmd = command_settings(container)
    # The Secret the engine reads its API key from, so that the timed question can use that key.
    key_secret, key_name = _engines.api_key_ref(spec)
    shm = [v["emptyDir"].get("sizeLimit", "") for v in spec.get("volumes") or []
           if (v.get("emptyDir") or {}).get("medium") == "Memory"]
    return {"container": container.get("name"), "gpu_request": request, "gpu_limit": limit,
            "parallel": int(cmd["tensor_parallel"] or 1) if tp_given else request if split_over_all else 1,
            "parallel_arg": ("tensor-parallel-size / num-shard" if tp_given else
                             "split-mode %s (every GPU of the pod)" % split[-1] if split_over_all else "none (1)"),
            "model": cmd["served_model_name"] or "", "shm_limit": shm[0] if shm else "",
            "api_key_secret": key_secret, "api_key_secret_key": key_name,
            "node": spec.get("nodeName") or "-"}


def sections(lines):
    """The output of the exec split at its ``### name`` markers; ``### name value`` is one value."""
    out = {}
    cur = None
    for line in lines or []:
        if line.startswith("### "):
            parts = line[4:].split(" ", 1)
            if len(parts) == 2:
                out[parts[0]] = [parts[1]]
                cur = None
            else:
                cur = parts[0]
                out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def parse_output(lines, query):
    """smi_ok, the nvidia-smi table, the ``-L`` list, one dict per GPU (query field -> raw value),
    the CUDA environment and the size of /dev/shm in MiB."""
    sec = sections(lines)
    fields = query.split(",")
    gpus = [dict(zip(fields, split_csv_line(line))) for line in sec.get("query", []) if re.match(r"^\d+,", line)]
    shm_mib = 0
    shm = [line for line in sec.get("shm", []) if re.search(r"/dev/shm$|^\S+\s+\d+", line)]
    if shm:
        parts = shm[-1].split()
        shm_mib = _count(parts[1]) // 1024 if len(parts) > 1 else 0
    return {"smi_ok": (sec.get("smi_rc") or ["1"])[0] == "0" and (sec.get("query_rc") or ["1"])[0] == "0",
            "table": sec.get("smi", []), "list": [line for line in sec.get("list", []) if re.match(r"^GPU \d+:", line)],
            "gpus": gpus, "env": sec.get("env", []), "shm_mib": shm_mib}


def _health_detail(health, service):
    ok = "model" in health and not health.get("failed") and "msg" not in health
    if not ok:
        return ok, ("no engine Service" if not service else truncate(health.get("msg", "failed"), 300))
    latency = [c.get("latency_s") for c in health.get("checks") or [] if c.get("name") == "chat"]
    text = "model %s answered %s in %s s" % (health["model"], json.dumps(truncate(str(health.get("answer", "")).strip(), 80)),
                                             latency[0] if latency else health.get("elapsed"))
    if health.get("stream"):
        text += ", first token after %s s, %s tokens/s" % (health["stream"].get("ttft_s"), health["stream"].get("tokens_per_s"))
    return ok, text


def checks(spec, out, health, service, log, min_shm_mib_per_gpu):
    """The checks of one pod, each ``{name, ok, detail}``. ``health``: the llm_health result (or a
    skipped one), ``log``: the k8s_log result (``log_lines``, or ``msg`` when not readable)."""
    seen = len(out["gpus"])
    gpus = max(spec["gpu_request"], 1)
    want_shm = int(min_shm_mib_per_gpu) * gpus
    health_ok, health_detail = _health_detail(health or {}, service)
    log = log or {}
    if "log_lines" in log:
        read = log["log_lines"] or []
        bad = [line for line in read if ERRORS.search(line)]
        log_ok = not bad
        log_detail = "%d lines, %d OOM/CUDA/NCCL error line(s)%s" % (
            len(read), len(bad), (", last: " + truncate(bad[-1], 200)) if bad else "")
    else:
        log_ok, log_detail = False, "log not readable: " + truncate(log.get("msg", ""), 200)
    names = sorted(set(g.get("name", "") for g in out["gpus"]), key=[g.get("name", "") for g in out["gpus"]].index)
    return [
        {"name": "nvidia-smi", "ok": out["smi_ok"] and seen > 0,
         "detail": ("%d GPU(s): %s" % (seen, ", ".join(names))) if out["smi_ok"]
         else "nvidia-smi failed in the pod: " + truncate(" ".join(out["table"]), 200)},
        {"name": "GPUs seen = GPUs requested", "ok": seen == spec["gpu_request"] == spec["gpu_limit"],
         "detail": "pod sees %d, requests %d, limit %d" % (seen, spec["gpu_request"], spec["gpu_limit"])},
        {"name": "Tensor parallel = GPUs", "ok": spec["parallel"] == spec["gpu_request"],
         "detail": "%s = %d, GPUs requested %d" % (spec["parallel_arg"], spec["parallel"], spec["gpu_request"])},
        {"name": "/dev/shm", "ok": out["shm_mib"] >= want_shm,
         "detail": "%d MiB in the pod (sizeLimit %s), want >= %d MiB" % (out["shm_mib"], spec["shm_limit"] or "none", want_shm)},
        {"name": "API answers", "ok": health_ok, "detail": health_detail},
        {"name": "Engine log", "ok": log_ok, "detail": log_detail},
    ]


def lines(namespace, target, pod_name, spec, out, results):
    """The result of one pod for the terminal."""
    text = ["%s: %s pod %s on node %s, model %s" % (namespace, target, pod_name, spec["node"], spec["model"] or "-")]
    text += out["table"] + out["list"]
    text.append("CUDA environment: %s" % (" ".join(out["env"]) or "no CUDA_/NVIDIA_/NCCL_ variables"))
    text += ["[%s] %s: %s" % ("OK" if c["ok"] else "FAIL", c["name"], c["detail"]) for c in results]
    return text


def prefixed(results, prefix):
    return [dict(c, name=(prefix or "") + c["name"]) for c in results]


def engine_target(pods, services):
    """``(pod, service)`` that test_gpu checks: the newest Running engine pod that is not being
    deleted (``{}`` without one) and the first engine Service by name (``''`` without one)."""
    pod = newest([p for p in pods or [] if (p.get("status") or {}).get("phase") == "Running"])
    names = sorted((s.get("metadata") or {}).get("name") or "" for s in services or [])
    return pod or {}, (names[0] if names else "")
