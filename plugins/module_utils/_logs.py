# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logs of the engine and WebUI containers and what they say, for ``llm_logs_info`` (logs.yml).

Pure: ``targets`` picks the containers from the pods, ``readable`` says whether a container has
the log asked for, ``analyse`` reads one log with its pod's Events (restarts, state, the last
termination, OOMKilled, CUDA and NCCL error lines, out-of-memory and kill lines, probe failures),
and ``lines`` lays the analyses out for the terminal."""

from __future__ import annotations

import re

from ansible_collections.haw_icc.llm.plugins.module_utils._text import truncate

COMPONENTS = ("engine", "webui")
# What the analysis looks for (case-insensitive).
PATTERNS = {
    "cuda": re.compile(r"CUDA (error|out of memory)|OutOfMemoryError|cudaError|CUBLAS_STATUS_|CUDNN_STATUS_|"
                       r"no CUDA-capable device|CUDA driver version is insufficient", re.I),
    "nccl": re.compile(r"NCCL (error|WARN)|nccl[A-Za-z]*Error|NCCL timeout|Watchdog caught collective operation timeout",
                       re.I),
    "oom": re.compile(r"out of memory|OOMKilled|signal 9|\bkilled\b|exit code:? -9", re.I),
}
# The lines that fail test_gpu's "Engine log" check: errors only (NCCL warnings and the word
# "killed" are shown by the analysis above, but do not fail a GPU test).
ERRORS = re.compile(
    r"CUDA (error|out of memory)|OutOfMemoryError|cudaError|CUBLAS_STATUS_|CUDNN_STATUS_|no CUDA-capable device|"
    r"CUDA driver version is insufficient|NCCL error|nccl[A-Za-z]*Error|NCCL timeout|"
    r"Watchdog caught collective operation timeout|out of memory|OOMKilled|signal 9|exit code:? -9", re.I)


def targets(pods, components):
    """One entry per container of the live pods whose component is in ``components``."""
    out = []
    for p in sorted(pods or [], key=lambda p: p["metadata"]["name"]):
        meta = p.get("metadata") or {}
        comp = (meta.get("labels") or {}).get("app.kubernetes.io/component", "")
        if comp not in components:
            continue
        status = p.get("status") or {}
        unscheduled = [c.get("message") or "" for c in status.get("conditions") or []
                       if c.get("type") == "PodScheduled" and c.get("status") == "False"]
        for c in (p.get("spec") or {}).get("containers") or []:
            st = [s for s in status.get("containerStatuses") or [] if s.get("name") == c["name"]]
            out.append({"pod": meta["name"], "container": c["name"], "component": comp,
                        "node": (p.get("spec") or {}).get("nodeName") or "", "phase": status.get("phase", "Unknown"),
                        "status": st[0] if st else {}, "scheduled_message": unscheduled[0] if unscheduled else ""})
    return out


def readable(target, previous):
    """A container that never started has no log; one that never restarted has no previous log."""
    st = target["status"]
    restarts = int(st.get("restartCount") or 0)
    if "state" not in st:
        return False
    if "waiting" in st["state"] and restarts == 0:
        return False
    return not previous or restarts > 0


def analyse(target, log, events, previous=False, show=30):
    """The analysis of one container: ``log`` is its text (None when not read), ``events`` the
    Events of the namespace's pods."""
    st = target["status"]
    state = st.get("state") or {"unknown": {}}
    state_name = next(iter(state), "unknown")
    waiting = state.get("waiting") or {}
    term = (st.get("lastState") or {}).get("terminated") or state.get("terminated") or {}
    lines = [line for line in (log or "").splitlines() if line]
    own = [e for e in events or [] if (e.get("involvedObject") or {}).get("name") == target["pod"]]
    probes = []
    for e in own:
        if e.get("reason") == "Unhealthy" and e.get("message") not in probes:
            probes.append(e.get("message"))
    skipped = ""
    if log is None:
        skipped = "previous container: none (no restart)" if previous else "container not started"
    return {
        "pod": target["pod"], "container": target["container"], "component": target["component"],
        "node": target["node"] or "-", "phase": target["phase"], "ready": bool(st.get("ready", False)),
        "state": state_name + (" (%s)" % waiting["reason"] if waiting.get("reason") else ""),
        "restarts": int(st.get("restartCount") or 0),
        "last_termination": {"reason": term.get("reason", ""), "exit_code": term.get("exitCode", ""),
                             "finished": term.get("finishedAt", "")} if term else {},
        "oom_killed": term.get("reason") == "OOMKilled",
        "log_read": log is not None,
        "log_skipped": skipped,
        "lines": len(lines),
        "cuda_errors": [line for line in lines if PATTERNS["cuda"].search(line)],
        "nccl_errors": [line for line in lines if PATTERNS["nccl"].search(line)],
        "oom_lines": [line for line in lines if PATTERNS["oom"].search(line)],
        "probe_failures": probes,
        "unschedulable": target["scheduled_message"],
        "events": [" | ".join(str(x) for x in (e.get("type"), e.get("reason"), e.get("count", 1), e.get("message", "")))
                   for e in own],
        "tail": lines[-show:] if show > 0 else [],
    }


def lines(namespace, analyses, previous=False, components=COMPONENTS):
    """The analyses as lines for the terminal."""
    out = []
    for a in analyses:
        out.append("== %s %s pod %s container %s (node %s)%s" % (
            namespace, a["component"], a["pod"], a["container"], a["node"], " previous container" if previous else ""))
        head = "state %s, ready %s, restarts %s" % (a["state"], a["ready"], a["restarts"])
        t = a["last_termination"]
        if t:
            head += ", last terminated: %s (exit code %s) at %s" % (t["reason"] or "?", t["exit_code"], t["finished"])
        out.append(head)
        if a["oom_killed"]:
            out.append("!! OOMKilled: the container used more memory than its limit; raise the memory limit or use a "
                       "smaller model / shorter context.")
        if a["unschedulable"]:
            out.append("!! not scheduled: %s" % a["unschedulable"])
        if a["cuda_errors"]:
            out.append("!! %d CUDA error line(s), last: %s" % (len(a["cuda_errors"]), truncate(a["cuda_errors"][-1], 300)))
        if a["nccl_errors"]:
            out.append("!! %d NCCL error/warning line(s), last: %s" % (len(a["nccl_errors"]),
                                                                       truncate(a["nccl_errors"][-1], 300)))
            out.append("(hangs or errors with several GPUs: try the NCCL fallback, P2P and IB off)")
        if a["oom_lines"] and not a["cuda_errors"]:
            out.append("!! %d out-of-memory/kill line(s), last: %s" % (len(a["oom_lines"]), truncate(a["oom_lines"][-1], 300)))
        if a["probe_failures"]:
            out.append("!! probe failures: %s" % truncate("; ".join(a["probe_failures"]), 500))
        if a["log_skipped"]:
            out.append("log: %s" % a["log_skipped"])
        else:
            out.append("log: %d line(s)%s" % (a["lines"], ", last %d:" % len(a["tail"]) if a["tail"] else ""))
            out += ["  %s" % line for line in a["tail"]]
        out.append("events: %d" % len(a["events"]))
        out += ["  %s" % truncate(e, 300) for e in a["events"][-10:]]
    return out or ["%s: no pods of components %s (labelled app.kubernetes.io/part-of=haw-icc-llm)."
                   % (namespace, ", ".join(components))]


def file_name(target, previous):
    return "%s_%s%s.log" % (target["pod"], target["container"], ".previous" if previous else "")
