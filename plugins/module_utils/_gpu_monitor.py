# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU and engine sampling for gpu_monitor: strict nvidia-smi CSV parsing, engine ``/metrics``
counters turned into rates, the samples and their summary (the files are written by
``_gpu_report``).

Pure functions, no cluster access; the sampling loop that execs and fetches lives in
``run_monitor`` and takes its two I/O functions as arguments.
"""

from __future__ import annotations

import csv
import datetime
import math
import time

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import (
    AuthenticationError, IccError, PermissionDeniedError)
from ansible_collections.haw_icc.llm.plugins.module_utils._metrics import parse_prometheus

# nvidia-smi --query-gpu fields, in the order asked, with our CSV column and value kind.
# clocks_throttle_reasons.active is accepted by every driver a V100 runs (renamed
# clocks_event_reasons.active in 535, the old name still works).
GPU_FIELDS = [
    ("index", "gpu_index", "int"),
    ("name", "gpu_name", "str"),
    ("uuid", "gpu_uuid", "str"),
    ("temperature.gpu", "temperature_c", "num"),
    ("utilization.gpu", "gpu_utilization_pct", "num"),
    ("utilization.memory", "memory_utilization_pct", "num"),
    ("memory.used", "memory_used_mib", "num"),
    ("memory.total", "memory_total_mib", "num"),
    ("power.draw", "power_draw_w", "num"),
    ("clocks.sm", "sm_clock_mhz", "num"),
    ("clocks_throttle_reasons.active", "throttle_bitmask", "hex"),
    ("ecc.errors.uncorrected.volatile.total", "ecc_errors_uncorrected", "num"),
]
APP_FIELDS = ["gpu_uuid", "pid", "used_memory"]
QUERY_FORMAT = "--format=csv,noheader,nounits"

# Values nvidia-smi prints instead of a number. N/A: not available on this board or right now;
# Not Supported: the board cannot measure it. The others mean something is broken.
NOT_AVAILABLE = ("[N/A]", "N/A", "[Not Supported]", "Not Supported",
                 "[Requested functionality has been deprecated]")
BROKEN = ("[Unknown Error]", "[GPU is lost]", "[Insufficient Permissions]", "[Unknown]")

# Bits of clocks_throttle_reasons.active (nvml.h, nvmlClocksThrottleReason*).
THROTTLE_BITS = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
]
# Not worth a warning: an idle GPU clocks down, and these are settings, not trouble.
BENIGN_THROTTLE = ("gpu_idle", "applications_clocks_setting", "display_clock_setting")

# Engine figures per sample. Gauges are read as they are; counters become rates per second
# between two samples; histograms become the mean of the observations made between two samples.
ENGINE_GAUGES = [("requests_running", _engines.metric_names("requests_running")),
                 ("requests_waiting", _engines.metric_names("requests_waiting")),
                 ("kv_cache_usage_pct", _engines.metric_names("kv_cache_usage"))]  # a fraction 0..1 there
ENGINE_COUNTERS = [("prompt_tokens_per_s", _engines.metric_names("prompt_tokens")),
                   ("generation_tokens_per_s", _engines.metric_names("generation_tokens")),
                   ("requests_per_s", _engines.metric_names("requests_succeeded"))]
ENGINE_HISTOGRAMS = [("ttft_mean_s", _engines.metric_names("time_to_first_token")),
                     ("e2e_latency_mean_s", _engines.metric_names("e2e_request_latency")),
                     ("inter_token_latency_mean_s", _engines.metric_names("inter_token_latency"))]

COLUMNS = (["timestamp", "elapsed_s", "sample", "namespace", "pod", "pod_restarts"]
           + [col for _f, col, _k in GPU_FIELDS]
           + ["memory_used_pct", "throttle_reasons", "compute_apps", "compute_apps_memory_mib"]
           + [key for key, _n in ENGINE_GAUGES] + [key for key, _n in ENGINE_COUNTERS]
           + [key for key, _n in ENGINE_HISTOGRAMS] + ["engine_metrics", "error"])
# Columns summarised with min/mean/max (per GPU for GPU columns, once for engine columns).
GPU_SUMMARY = ["gpu_utilization_pct", "memory_utilization_pct", "memory_used_mib", "memory_used_pct",
               "temperature_c", "power_draw_w", "sm_clock_mhz"]
ENGINE_SUMMARY = ([key for key, _n in ENGINE_GAUGES] + [key for key, _n in ENGINE_COUNTERS]
                  + [key for key, _n in ENGINE_HISTOGRAMS])


class NvidiaSmiError(IccError):
    """nvidia-smi is missing, failed, or printed something that is not its CSV."""


def now_iso(ts=None):
    """ISO 8601 UTC timestamp with milliseconds, e.g. 2026-11-29T03:30:01.123+00:00."""
    moment = datetime.datetime.fromtimestamp(time.time() if ts is None else ts, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def file_stamp(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------------------------
# nvidia-smi


# Drivers that dropped the old name of the throttle reasons field get the new one instead.
THROTTLE_FIELD_NEW = "clocks_event_reasons.active"


def gpu_query_command(nvidia_smi="nvidia-smi", new_throttle_name=False):
    fields = [f for f, _c, _k in GPU_FIELDS]
    if new_throttle_name:
        fields = [THROTTLE_FIELD_NEW if f == "clocks_throttle_reasons.active" else f for f in fields]
    return [nvidia_smi, "--query-gpu=" + ",".join(fields), QUERY_FORMAT]


def apps_query_command(nvidia_smi="nvidia-smi"):
    return [nvidia_smi, "--query-compute-apps=" + ",".join(APP_FIELDS), QUERY_FORMAT]


def explain_failure(output, exit_code=None, nvidia_smi="nvidia-smi"):
    """Raise NvidiaSmiError with a hint for output that is not CSV (or a failed exec)."""
    text = (output or "").strip()
    low = text.lower()
    if ("not found" in low or "no such file" in low or exit_code in (126, 127)) and "devices" not in low:
        raise NvidiaSmiError(
            "%s is not in the engine container (%s)." % (nvidia_smi, text[:300] or "exit code %s" % exit_code),
            "GPU images of vLLM and TGI get it from the NVIDIA container runtime at "
            "/usr/local/nvidia/bin/nvidia-smi when the pod requests nvidia.com/gpu: set "
            "gpu_monitor_nvidia_smi to that path, or check that the pod has a GPU limit.")
    if "no devices were found" in low or exit_code == 6:
        raise NvidiaSmiError("nvidia-smi found no GPU in the container (%s)." % text[:300],
                             "The pod must request nvidia.com/gpu in its resource limits.")
    if "couldn't communicate with the nvidia driver" in low or exit_code == 9:
        raise NvidiaSmiError("nvidia-smi cannot talk to the NVIDIA driver (%s)." % text[:300],
                             "The node's driver is not usable; ask the ICC admins or redeploy.")
    if "is not a valid field" in low:
        raise NvidiaSmiError("This nvidia-smi does not know a queried field (%s)." % text[:300],
                             "The driver is older than expected; report the driver version.")
    raise NvidiaSmiError("nvidia-smi failed (exit code %s): %s" % (exit_code, text[:300] or "no output"))


def split_csv_line(line):
    return [v.strip() for v in next(csv.reader([line], skipinitialspace=True))]


def _value(raw, kind, field):
    """(value, problem): None for N/A-like values, problem text for broken ones; strict numbers."""
    if raw in NOT_AVAILABLE:
        return None, None
    if raw in BROKEN:
        return None, "%s: %s" % (field, raw.strip("[]"))
    if kind == "str":
        return raw, None
    if kind == "hex":
        try:
            return int(raw, 16), None
        except ValueError:
            raise NvidiaSmiError("nvidia-smi printed %r for %s, not a hex bitmask." % (raw, field))
    try:
        number = float(raw)
    except ValueError:
        raise NvidiaSmiError("nvidia-smi printed %r for %s, not a number (was nounits honoured?)."
                             % (raw, field))
    if math.isnan(number) or math.isinf(number):
        return None, None
    if kind == "int":
        if number != int(number):
            raise NvidiaSmiError("nvidia-smi printed %r for %s, not an integer." % (raw, field))
        return int(number), None
    return number, None


def throttle_names(mask):
    if mask is None:
        return []
    return [name for bit, name in THROTTLE_BITS if mask & bit]


def parse_gpu_csv(text, exit_code=0, nvidia_smi="nvidia-smi"):
    """Rows of ``--query-gpu`` CSV (noheader, nounits) as dicts keyed by our CSV columns.

    Each dict has ``problems`` (broken values such as ``[GPU is lost]``). Anything that is not
    exactly one value per queried field raises NvidiaSmiError.
    """
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if exit_code not in (0, None) or not lines:
        explain_failure(text, exit_code, nvidia_smi)
    gpus = []
    for line in lines:
        values = split_csv_line(line)
        if len(values) != len(GPU_FIELDS):
            if len(gpus) == 0 and len(values) < 3:
                explain_failure(text, exit_code, nvidia_smi)
            raise NvidiaSmiError("nvidia-smi printed %d values where %d were asked for: %r"
                                 % (len(values), len(GPU_FIELDS), line[:200]))
        row = {"problems": []}
        for (field, col, kind), raw in zip(GPU_FIELDS, values):
            value, problem = _value(raw, kind, field)
            row[col] = value
            if problem:
                row["problems"].append(problem)
        if row["gpu_index"] is None:
            raise NvidiaSmiError("nvidia-smi printed no GPU index: %r" % line[:200])
        used, total = row["memory_used_mib"], row["memory_total_mib"]
        row["memory_used_pct"] = round(100.0 * used / total, 2) if used is not None and total else None
        reasons = [r for r in throttle_names(row["throttle_bitmask"]) if r not in BENIGN_THROTTLE]
        row["throttle_reasons"] = " ".join(reasons)
        gpus.append(row)
    return gpus


def parse_apps_csv(text, exit_code=0, nvidia_smi="nvidia-smi"):
    """{gpu uuid: {"compute_apps": n, "compute_apps_memory_mib": MiB or None}} of --query-compute-apps."""
    if exit_code not in (0, None):
        explain_failure(text, exit_code, nvidia_smi)
    apps = {}
    for line in (text or "").splitlines():
        if not line.strip() or "no running processes found" in line.lower():
            continue
        values = split_csv_line(line)
        if len(values) != len(APP_FIELDS):
            raise NvidiaSmiError("nvidia-smi printed %d values where %d were asked for: %r"
                                 % (len(values), len(APP_FIELDS), line[:200]))
        uuid, _pid, mem = values
        memory, _problem = _value(mem, "num", "used_memory")
        entry = apps.setdefault(uuid, {"compute_apps": 0, "compute_apps_memory_mib": None})
        entry["compute_apps"] += 1
        if memory is not None:
            entry["compute_apps_memory_mib"] = (entry["compute_apps_memory_mib"] or 0) + memory
    return apps


# ---------------------------------------------------------------------------------------------
# engine /metrics


def _total(samples, name):
    values = [v for _l, v in samples.get(name, []) if not math.isnan(v)]
    return sum(values) if values else None


def engine_snapshot(text):
    """Gauges, counters and histogram sums/counts of a /metrics text, under our names."""
    samples = parse_prometheus(text)
    snap = {"gauges": {}, "counters": {}, "histograms": {}, "names": {}}
    for key, names in ENGINE_GAUGES:
        for name in names:
            value = _total(samples, name)
            if value is not None:
                if key == "kv_cache_usage_pct":
                    value = value * 100.0
                snap["gauges"][key] = value
                snap["names"][key] = name
                break
    for key, names in ENGINE_COUNTERS:
        for name in names:
            value = _total(samples, name)
            if value is not None:
                snap["counters"][key] = value
                snap["names"][key] = name
                break
    for key, names in ENGINE_HISTOGRAMS:
        for name in names:
            total, count = _total(samples, name + "_sum"), _total(samples, name + "_count")
            if total is not None and count is not None:
                snap["histograms"][key] = (total, count)
                snap["names"][key] = name
                break
    snap["known"] = bool(snap["gauges"] or snap["counters"] or snap["histograms"])
    return snap


def engine_figures(prev, cur, seconds):
    """Per-sample engine figures: gauges now, counter rates and histogram means since ``prev``.

    A counter that went down means the engine restarted: the rate of that interval is unknown
    (None) and ``reset`` is True.
    """
    out = dict((key, None) for key in ENGINE_SUMMARY)
    reset = False
    if cur is None:
        return out, reset
    out.update(cur["gauges"])
    if prev is None or not seconds or seconds <= 0:
        return out, reset
    for key, value in cur["counters"].items():
        before = prev["counters"].get(key)
        if before is None:
            continue
        if value < before:
            reset = True
            continue
        out[key] = (value - before) / seconds
    for key, (total, count) in cur["histograms"].items():
        before = prev["histograms"].get(key)
        if before is None:
            continue
        if count < before[1]:
            reset = True
            continue
        if count > before[1]:
            out[key] = (total - before[0]) / (count - before[1])
    return out, reset


# ---------------------------------------------------------------------------------------------
# The sampling loop


def _round(value, digits=3):
    if isinstance(value, float):
        return round(value, digits)
    return value


class Monitor(object):
    """Collects samples into rows, events and errors.

    ``exec_fn(pod, argv) -> (output, exit_code)`` runs a command in the engine container (raises
    IccError when the pod cannot be reached). ``metrics_fn(pod) -> text or None`` returns the
    engine's /metrics text, None when the engine has none (HTTP 404), or raises IccError.
    ``pod_fn() -> {"name", "uid", "restarts"} or None`` finds the engine pod now.
    """

    def __init__(self, namespace, pod_fn, exec_fn, metrics_fn=None, nvidia_smi="nvidia-smi",
                 clock=time.time, sleep=time.sleep, target=None):
        self.namespace = namespace
        self.target = target
        self.pod_fn = pod_fn
        self.exec_fn = exec_fn
        self.metrics_fn = metrics_fn
        self.nvidia_smi = nvidia_smi
        self.clock = clock
        self.sleep = sleep
        self.rows = []
        self.events = []
        self.errors = []
        self.pods = []
        self.started = None
        self.metrics_status = "not asked" if metrics_fn is None else "not read yet"
        self.metrics_names = {}
        self._last_pod = None
        self._prev_snap = None
        self._prev_time = None
        self._new_throttle_name = False

    def event(self, ts, text):
        self.events.append({"timestamp": now_iso(ts), "elapsed_s": _round(ts - self.started, 1),
                            "event": text})

    def _track_pod(self, ts, pod):
        last = self._last_pod
        if pod is None:
            if last is not None and last.get("name") is not None:
                self.event(ts, "engine pod %s is gone; no Running pod found" % last["name"])
            self._last_pod = {"name": None}
            return
        if pod["name"] not in self.pods:
            self.pods.append(pod["name"])
        if last is None:
            pass
        elif last.get("name") != pod["name"]:
            self.event(ts, "engine pod %s replaced by %s" % (last.get("name") or "(none)", pod["name"]))
            self._prev_snap = None
        elif pod["restarts"] > last["restarts"]:
            self.event(ts, "engine container of %s restarted (restart count %d -> %d)"
                       % (pod["name"], last["restarts"], pod["restarts"]))
            self._prev_snap = None
        self._last_pod = pod

    def sample(self, index):
        ts = self.clock()
        if self.started is None:
            self.started = ts
        base = {"timestamp": now_iso(ts), "elapsed_s": _round(ts - self.started, 3), "sample": index,
                "namespace": self.namespace}
        try:
            pod = self.pod_fn()
        except (AuthenticationError, PermissionDeniedError):
            raise
        except IccError as exc:
            pod = None
            self.errors.append("sample %d: finding the engine pod: %s" % (index, exc))
        if pod is None and index == 0:
            raise IccError("No Running engine pod in %s matches %s." % (self.namespace, self.target or "the selector"),
                           "Deploy one first (playbook deploy.yml), or name it with gpu_monitor_engine, "
                           "gpu_monitor_selector or gpu_monitor_pod; kubectl get pods -n %s shows what runs."
                           % self.namespace)
        self._track_pod(ts, pod)
        if pod is None:
            self.rows.append(self._row(base, {}, error="no Running engine pod"))
            return
        base["pod"] = pod["name"]
        base["pod_restarts"] = pod["restarts"]
        gpus, error = [], None
        try:
            out, code = self.exec_fn(pod["name"], gpu_query_command(self.nvidia_smi, self._new_throttle_name))
            if (not self._new_throttle_name and code not in (0, None)
                    and "clocks_throttle_reasons" in (out or "") and "not a valid field" in (out or "")):
                self._new_throttle_name = True
                out, code = self.exec_fn(pod["name"], gpu_query_command(self.nvidia_smi, True))
            gpus = parse_gpu_csv(out, code, self.nvidia_smi)
            try:
                out, code = self.exec_fn(pod["name"], apps_query_command(self.nvidia_smi))
                apps = parse_apps_csv(out, code, self.nvidia_smi)
            except NvidiaSmiError as exc:
                apps = {}
                self.errors.append("sample %d: compute apps: %s" % (index, exc.message))
            for gpu in gpus:
                gpu.update(apps.get(gpu["gpu_uuid"], {"compute_apps": 0, "compute_apps_memory_mib": None}))
        except (AuthenticationError, PermissionDeniedError):
            raise
        except NvidiaSmiError as exc:
            error = exc.message
            if index == 0:
                # Missing binary, no GPU, no driver, unknown field: say so now instead of writing a
                # CSV of errors. Later failures (a pod going away) are recorded per sample.
                raise
        except IccError as exc:
            error = "exec in %s failed: %s" % (pod["name"], exc.message)
        if error:
            self.errors.append("sample %d: %s" % (index, error))
        engine, engine_state = self._engine(index, ts, pod)
        if not gpus:
            self.rows.append(self._row(base, engine, error=error, engine_state=engine_state))
        for gpu in gpus:
            problems = "; ".join(gpu.pop("problems"))
            self.rows.append(self._row(base, engine, gpu=gpu, error=problems or None,
                                       engine_state=engine_state))

    def _engine(self, index, ts, pod):
        if self.metrics_fn is None:
            return {}, "not asked"
        try:
            text = self.metrics_fn(pod["name"])
        except IccError as exc:
            self.metrics_status = "error: %s" % exc.message
            self.errors.append("sample %d: /metrics: %s" % (index, exc.message))
            return {}, "error"
        if text is None:
            self.metrics_status = "not available (the engine has no /metrics)"
            return {}, "not available"
        snap = engine_snapshot(text)
        if not snap["known"]:
            self.metrics_status = "not available (no vLLM, TGI or llama.cpp metrics in /metrics)"
            return {}, "not available"
        self.metrics_status = "available"
        self.metrics_names.update(snap["names"])
        seconds = ts - self._prev_time if self._prev_time is not None else None
        figures, reset = engine_figures(self._prev_snap, snap, seconds)
        if reset:
            self.event(ts, "engine counters went down: the engine restarted")
        self._prev_snap, self._prev_time = snap, ts
        return figures, "ok"

    def _row(self, base, engine, gpu=None, error=None, engine_state=""):
        row = dict((col, None) for col in COLUMNS)
        row.update(base)
        row.update(engine)
        if gpu:
            row.update(gpu)
        row["engine_metrics"] = engine_state
        row["error"] = error
        return dict((k, _round(v)) for k, v in row.items())

    def run(self, count=None, duration=None, interval=5.0, on_sample=None):
        """Sample ``count`` times, or for ``duration`` seconds, every ``interval`` seconds;
        ``on_sample(index, total, rows)`` is told of each sample's rows (``total``: the number of
        samples planned)."""
        start = self.clock()
        index = 0
        total = count if count is not None else max(1, int((duration + 1e-6) // interval) + 1)
        while True:
            began = self.clock()
            before = len(self.rows)
            self.sample(index)
            if on_sample is not None:
                on_sample(index, total, self.rows[before:])
            index += 1
            if count is not None and index >= count:
                break
            if duration is not None and self.clock() - start + interval > duration + 1e-6:
                break
            self.sleep(max(0.0, interval - (self.clock() - began)))
        return self.rows


def sample_line(index, total, rows):
    """One compact line of a sample's rows, as the original terminal monitor printed them:
    ``sample 3/12  GPU0 87% 14.2/16.0 GiB 210 W 61 C | GPU1 ...  engine 42.1 tok/s, 2 running``."""
    parts = []
    for row in rows:
        if row.get("gpu_index") is None:
            continue
        used, total_mib = row.get("memory_used_mib"), row.get("memory_total_mib")
        memory = ("%.1f/%.1f GiB" % (used / 1024.0, total_mib / 1024.0)
                  if isinstance(used, (int, float)) and isinstance(total_mib, (int, float)) else "? GiB")
        parts.append("GPU%s %s%% %s %s W %s C" % (
            row["gpu_index"], _fmt_num(row.get("gpu_utilization_pct")), memory, _fmt_num(row.get("power_draw_w")),
            _fmt_num(row.get("temperature_c"))))
    first = rows[0] if rows else {}
    line = "sample %d/%d  %s" % (index + 1, total, " | ".join(parts) if parts else (first.get("error") or "no GPU figures"))
    tokens, running = first.get("generation_tokens_per_s"), first.get("requests_running")
    if first.get("engine_metrics") == "ok":
        line += "  engine %s tok/s, %s running" % (_fmt_num(tokens, 1), _fmt_num(running))
    return line


def _fmt_num(value, digits=0):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return ("%." + str(digits) + "f") % value


# ---------------------------------------------------------------------------------------------
# Summary


def _stats(values):
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return None
    return {"min": _round(min(values)), "mean": _round(sum(values) / len(values)),
            "max": _round(max(values)), "samples": len(values)}


def summarize(monitor, files=None):
    rows = monitor.rows
    gpu_rows = [r for r in rows if r.get("gpu_index") is not None]
    gpus = []
    for uuid in sorted(set(r["gpu_uuid"] for r in gpu_rows), key=str):
        mine = [r for r in gpu_rows if r["gpu_uuid"] == uuid]
        first = mine[0]
        metrics = {}
        for col in GPU_SUMMARY:
            stats = _stats(r[col] for r in mine)
            if stats:
                metrics[col] = stats
        throttled = {}
        for r in mine:
            for reason in (r["throttle_reasons"] or "").split():
                throttled[reason] = throttled.get(reason, 0) + 1
        peak = max((r for r in mine if r["memory_used_mib"] is not None),
                   key=lambda r: r["memory_used_mib"], default=None)
        not_reported = sorted(col for col in GPU_SUMMARY if col not in metrics)
        gpus.append({
            "index": first["gpu_index"], "name": first["gpu_name"], "uuid": uuid,
            "memory_total_mib": first["memory_total_mib"], "samples": len(mine),
            "metrics": metrics,
            "peak_memory_used_mib": peak["memory_used_mib"] if peak else None,
            "peak_memory_at": peak["timestamp"] if peak else None,
            "throttling": [{"reason": k, "samples": v} for k, v in sorted(throttled.items())],
            "ecc_errors_uncorrected_max": (_stats(r["ecc_errors_uncorrected"] for r in mine) or {}).get("max"),
            "not_reported": not_reported,
        })
    gpus.sort(key=lambda g: g["index"])
    sample_ids = sorted(set(r["sample"] for r in rows))
    per_sample = {}
    for r in rows:
        per_sample.setdefault(r["sample"], r)
    engine_rows = list(per_sample.values())
    engine = {"metrics": monitor.metrics_status, "names": dict(sorted(monitor.metrics_names.items()))}
    for col in ENGINE_SUMMARY:
        stats = _stats(r[col] for r in engine_rows)
        if stats:
            engine[col] = stats
    tokens = _stats(r["generation_tokens_per_s"] for r in engine_rows)
    throttling = [{"gpu": g["index"], "reason": t["reason"], "samples": t["samples"]}
                  for g in gpus for t in g["throttling"]]
    first_ts = rows[0]["timestamp"] if rows else None
    last_ts = rows[-1]["timestamp"] if rows else None
    return {
        "namespace": monitor.namespace,
        "pods": list(monitor.pods),
        "started": first_ts,
        "finished": last_ts,
        "samples": len(sample_ids),
        "samples_with_gpu_data": len(set(r["sample"] for r in gpu_rows)),
        "gpu_count": len(gpus),
        "gpus": gpus,
        "engine": engine,
        "tokens_per_s": tokens,
        "peak_memory_used_mib": max([g["peak_memory_used_mib"] for g in gpus
                                     if g["peak_memory_used_mib"] is not None] or [None], key=lambda v: v or 0),
        "throttling": throttling,
        "errors": list(monitor.errors),
        "events": list(monitor.events),
        "files": files or {},
    }


def summary_lines(summary):
    """A few lines a person reads in the Ansible output."""
    pods = ", ".join(summary["pods"]) or "no pod"
    head = (summary["samples"], summary["namespace"], pods, summary["gpu_count"])
    lines = ["%d samples of %s (%s), %d GPU(s)" % head]
    for g in summary["gpus"]:
        m = g["metrics"]

        def fig(col, unit, m=m):
            s = m.get(col)
            if not s:
                return "n/a"
            return "%s/%s/%s %s" % (_fmt(s["min"]), _fmt(s["mean"]), _fmt(s["max"]), unit)
        lines.append("GPU %s %s: util min/mean/max %s, memory %s (peak %s of %s MiB), temp %s, power %s"
                     % (g["index"], g["name"], fig("gpu_utilization_pct", "%"), fig("memory_used_mib", "MiB"),
                        _fmt(g["peak_memory_used_mib"]), _fmt(g["memory_total_mib"]),
                        fig("temperature_c", "C"), fig("power_draw_w", "W")))
    tps = summary["tokens_per_s"]
    lines.append("engine /metrics: %s%s" % (
        summary["engine"]["metrics"],
        "; generated tokens/s min/mean/max %s/%s/%s" % (_fmt(tps["min"]), _fmt(tps["mean"]), _fmt(tps["max"]))
        if tps else ""))
    throttled = ", ".join("GPU %s %s (%d samples)" % (t["gpu"], t["reason"], t["samples"])
                          for t in summary["throttling"])
    lines.append("throttling: %s" % (throttled or "none"))
    for e in summary["events"]:
        lines.append("event at %ss: %s" % (e["elapsed_s"], e["event"]))
    if summary["errors"]:
        lines.append("%d error(s), first: %s" % (len(summary["errors"]), summary["errors"][0]))
    return lines


def _fmt(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return ("%.1f" % value).rstrip("0").rstrip(".") if abs(value) >= 10 else ("%.2f" % value).rstrip("0").rstrip(".")
    return str(value)


# ---------------------------------------------------------------------------------------------
# Cluster side: find the engine pod, exec in it, read its /metrics through a port-forward


class KubeSampler(object):
    """The three I/O functions of Monitor, over the Kubernetes API (no kubectl)."""

    def __init__(self, kube, tunnel_kube, namespace, selector=None, pod=None, container=None,
                 metrics_port=8000, metrics_path="/metrics", timeout=20, metrics_url=None):
        self.metrics_url = metrics_url
        self.kube = kube
        self.tunnel_kube = tunnel_kube
        self.namespace = namespace
        self.selector = selector
        self.pod = pod
        self.container = container
        self.metrics_port = metrics_port
        self.metrics_path = metrics_path
        self.timeout = timeout
        self._tunnel = None
        self._tunnel_pod = None
        self._base_url = None
        self._containers = {}
        self._key_refs = {}  # pod -> (Secret, key) of the API key its engine reads (VLLM_API_KEY, LLAMA_API_KEY)
        self._keys = {}

    def _describe(self, pod):
        statuses = pod.status.container_statuses or []
        name = self.container or (pod.spec.containers[0].name if pod.spec.containers else None)
        self._containers[pod.metadata.name] = name
        chosen = [c for c in pod.spec.containers or [] if c.name == name][:1]
        env = [{"name": e.name, "valueFrom": {"secretKeyRef": {
            "name": e.value_from.secret_key_ref.name, "key": e.value_from.secret_key_ref.key}}}
            for c in chosen for e in c.env or [] if e.value_from is not None and e.value_from.secret_key_ref is not None]
        self._key_refs[pod.metadata.name] = _engines.api_key_ref({"containers": [{"env": env}]})
        restarts = sum(s.restart_count or 0 for s in statuses if s.name == name)
        return {"name": pod.metadata.name, "uid": pod.metadata.uid, "restarts": restarts}

    def find_pod(self):
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

        if self.pod:
            try:
                pod = self.kube.call(self.kube.core.read_namespaced_pod, self.pod, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            pods = [pod]
        else:
            pods = self.kube.call(self.kube.core.list_namespaced_pod, self.namespace,
                                  label_selector=self.selector).items
        running = [p for p in pods if p.status and p.status.phase == "Running"
                   and not p.metadata.deletion_timestamp]
        if not running:
            return None
        from ansible_collections.haw_icc.llm.plugins.module_utils._portforward import pod_ready

        running.sort(key=lambda p: (not pod_ready(p), p.metadata.name))
        return self._describe(running[0])

    def exec_in(self, pod, argv):
        from ansible_collections.haw_icc.llm.plugins.module_utils import _exec

        out, err, code = _exec.run(self.kube, self.namespace, pod, argv, self._containers.get(pod), self.timeout,
                                   "icc_namespace / gpu_monitor_namespace")
        if code is None:
            return (out + err).strip(), 127 if "not found" in err.lower() else 1
        return out if code == 0 else (out + err), code

    def metrics(self, pod):
        """The /metrics text of the engine in ``pod``, None when it has none (HTTP 404)."""
        from ansible.module_utils.urls import open_url
        from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
        from ansible_collections.haw_icc.llm.plugins.module_utils._portforward import ServiceTunnel

        if self.metrics_url:
            url = self.metrics_url
        elif self._tunnel_pod != pod:
            self.close()
            self._tunnel = ServiceTunnel(self.tunnel_kube, self.namespace, None, self.metrics_port,
                                         pod=pod, pod_port=self.metrics_port)
            self._base_url = self._tunnel.__enter__()
            self._tunnel_pod = pod
        if not self.metrics_url:
            url = self._base_url + self.metrics_path
        try:
            try:
                resp = open_url(url, timeout=self.timeout, validate_certs=False, headers=self._auth(pod))
            except HTTPError as exc:
                # llama-server guards /metrics with its API key: ask again with the key its Secret holds.
                if exc.code != 401 or pod in self._keys or not self._key_refs.get(pod, ("",))[0]:
                    raise
                self._keys[pod] = self._secret_key(*self._key_refs[pod])
                resp = open_url(url, timeout=self.timeout, validate_certs=False, headers=self._auth(pod))
            return resp.read().decode("utf-8", "replace")
        except HTTPError as exc:
            if exc.code == 404:
                return None
            hint = " (the engine wants its API key, and its pod reads none from a Secret this run may read)" \
                if exc.code == 401 else ""
            raise IccError("GET %s of pod %s answered HTTP %s%s." % (self.metrics_path, pod, exc.code, hint))
        except (URLError, OSError, ValueError) as exc:
            raise IccError("GET %s of pod %s failed: %s" % (self.metrics_path, pod, exc))

    def _auth(self, pod):
        key = self._keys.get(pod)
        return {"Authorization": "Bearer %s" % key} if key else {}

    def _secret_key(self, name, key):
        """The API key in the Secret ``name`` (its ``key``), or None when it cannot be read."""
        import base64

        from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

        try:
            secret = self.kube.call(self.kube.core.read_namespaced_secret, name, self.namespace)
        except ApiException:
            return None
        value = (secret.data or {}).get(key)
        return base64.b64decode(value).decode("utf-8") if value else None

    def close(self):
        if self._tunnel is not None:
            self._tunnel.__exit__(None, None, None)
        self._tunnel = None
        self._tunnel_pod = None
