"""Pure logic of gpu_monitor: nvidia-smi CSV parsing, engine /metrics rates, the sampling loop with
pods that restart, the summary and the files."""

from __future__ import annotations

import csv
import datetime
import json
import pathlib
import re
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor as gm
from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_report as gr
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, PermissionDeniedError
from ansible_collections.haw_icc.llm.plugins.modules import gpu_monitor_sample

REPO = pathlib.Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "cluster" / "standin" / "nvidia-smi"
UUID0 = "GPU-5e1f0000-0c3a-4b8e-9d21-7a6c1f2e3d4c"
UUID1 = "GPU-5e1f0001-0c3a-4b8e-9d21-7a6c1f2e3d4d"

# What driver 535 prints on a V100 node for the query of gpu_query_command (two GPUs: one busy and
# power-capped, one idle with the power reading missing).
TWO_GPUS = (
    "0, Tesla V100-PCIE-16GB, %s, 67, 98, 61, 15112, 16384, 247.31, 1380, 0x0000000000000004, 0\n"
    "1, Tesla V100-PCIE-16GB, %s, 33, 0, 0, 4, 16384, [N/A], 135, 0x0000000000000001, 0\n" % (UUID0, UUID1))

VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} %(running)s
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:%(kv)s{engine="0",model_name="m"} 0.25
vllm:prompt_tokens_total{engine="0",model_name="m"} %(prompt)s
vllm:generation_tokens_total{engine="0",model_name="m"} %(gen)s
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} %(ok)s
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 1.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} %(ttft_sum)s
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} %(ok)s
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} %(e2e_sum)s
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} %(ok)s
"""


def vllm(running=2, prompt=100, gen=1000, ok=4, ttft_sum=0.4, e2e_sum=8.0, kv="kv_cache_usage_perc"):
    return VLLM_METRICS % dict(running=running, prompt=prompt, gen=gen, ok=ok, ttft_sum=ttft_sum,
                               e2e_sum=e2e_sum, kv=kv)


TGI_METRICS = """tgi_queue_size 3
tgi_batch_current_size 5
tgi_request_success 10
tgi_request_input_length_sum 400
tgi_request_input_length_count 10
tgi_request_generated_tokens_sum %s
tgi_request_generated_tokens_count 10
tgi_request_duration_sum 12.5
tgi_request_duration_count 10
"""


# ---- nvidia-smi --query-gpu

def test_two_gpus_with_na_and_throttle_reasons():
    gpus = gm.parse_gpu_csv(TWO_GPUS)
    assert [g["gpu_index"] for g in gpus] == [0, 1]
    busy, idle = gpus
    assert busy["gpu_utilization_pct"] == 98 and busy["memory_used_mib"] == 15112
    assert busy["power_draw_w"] == 247.31 and busy["memory_used_pct"] == 92.24
    assert busy["throttle_bitmask"] == 4 and busy["throttle_reasons"] == "sw_power_cap"
    assert idle["power_draw_w"] is None and idle["problems"] == []
    assert idle["throttle_reasons"] == ""  # gpu_idle is not trouble
    assert idle["gpu_uuid"] == UUID1 and idle["gpu_name"] == "Tesla V100-PCIE-16GB"


def test_not_supported_and_broken_values():
    line = "0, Tesla V100-PCIE-16GB, %s, [Not Supported], 5, [N/A], 100, 16384, [Unknown Error], 1380, [Not Supported], [N/A]" % UUID0
    (gpu,) = gm.parse_gpu_csv(line)
    assert gpu["temperature_c"] is None and gpu["memory_utilization_pct"] is None
    assert gpu["throttle_bitmask"] is None and gpu["ecc_errors_uncorrected"] is None
    assert gpu["power_draw_w"] is None and gpu["problems"] == ["power.draw: Unknown Error"]
    lost = "0, Tesla V100-PCIE-16GB, %s, %s" % (UUID0, ", ".join(["[GPU is lost]"] * 9))
    (gpu,) = gm.parse_gpu_csv(lost)
    assert "temperature.gpu: GPU is lost" in gpu["problems"]


def test_units_in_values_are_refused():
    with pytest.raises(gm.NvidiaSmiError, match="not a number"):
        gm.parse_gpu_csv(TWO_GPUS.replace("247.31", "247.31 W"))


def test_wrong_number_of_values_is_refused():
    with pytest.raises(gm.NvidiaSmiError, match="11 values where 12"):
        gm.parse_gpu_csv(TWO_GPUS.replace(", 0x0000000000000004", ""))


def test_garbage_in_a_hex_field_is_refused():
    with pytest.raises(gm.NvidiaSmiError, match="hex bitmask"):
        gm.parse_gpu_csv(TWO_GPUS.replace("0x0000000000000004", "throttled"))


@pytest.mark.parametrize("output, code, expected", [
    ("No devices were found", 6, "found no GPU"),
    ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure ...", 9,
     "cannot talk to the NVIDIA driver"),
    ('error executing command in container: cmd start: nvidia-smi : exec: "nvidia-smi": '
     "executable file not found in $PATH", 127, "is not in the engine container"),
    ('OCI runtime exec failed: exec failed: unable to start container process: exec: "nvidia-smi": '
     "executable file not found in $PATH: unknown", 126, "is not in the engine container"),
    ('Field "clocks_throttle_reasons.active" is not a valid field to query.', 2, "does not know a queried field"),
    ("", 0, "failed (exit code 0): no output"),
    ("Segmentation fault", 139, "exit code 139"),
])
def test_failures_have_clear_messages(output, code, expected):
    with pytest.raises(gm.NvidiaSmiError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
        gm.parse_gpu_csv(output, code)
    if "engine container" in expected:
        assert "/usr/local/nvidia/bin/nvidia-smi" in info.value.hint


def test_the_sandbox_standin_prints_what_the_parser_reads(tmp_path):
    """The test double and the parser agree on the format (and so on the real one it copies)."""
    control = tmp_path / "control.json"
    for ctl, n in (({}, 4), ({"gpus": 2, "vary": True, "not_supported": ["ecc.errors.uncorrected.volatile.total"]}, 2)):
        control.write_text(json.dumps(ctl))
        env = {"PATH": "/usr/bin:/bin", "NVIDIA_SMI_STANDIN_CONTROL": str(control)}
        proc = subprocess.run([sys.executable, str(STANDIN)] + gm.gpu_query_command()[1:], env=env,
                              capture_output=True, text=True, check=True)
        gpus = gm.parse_gpu_csv(proc.stdout, proc.returncode)
        assert len(gpus) == n
        assert gpus[-1]["power_draw_w"] is None  # the stand-in's last GPU has no power reading
        if ctl:
            assert all(g["ecc_errors_uncorrected"] is None for g in gpus)
        proc = subprocess.run([sys.executable, str(STANDIN)] + gm.apps_query_command()[1:], env=env,
                              capture_output=True, text=True, check=True)
        apps = gm.parse_apps_csv(proc.stdout, proc.returncode)
        assert sorted(apps) == sorted(g["gpu_uuid"] for g in gpus)
    control.write_text(json.dumps({"fail": "driver"}))
    proc = subprocess.run([sys.executable, str(STANDIN)] + gm.gpu_query_command()[1:], capture_output=True,
                          check=False, text=True, env={"PATH": "/usr/bin:/bin", "NVIDIA_SMI_STANDIN_CONTROL": str(control)})
    with pytest.raises(gm.NvidiaSmiError, match="NVIDIA driver"):
        gm.parse_gpu_csv(proc.stdout, proc.returncode)


# ---- nvidia-smi --query-compute-apps

def test_compute_apps_several_per_gpu_na_memory_and_none():
    text = "%s, 4101, 15000\n%s, 4102, [N/A]\n%s, 4103, 100\n" % (UUID0, UUID0, UUID1)
    apps = gm.parse_apps_csv(text)
    assert apps[UUID0] == {"compute_apps": 2, "compute_apps_memory_mib": 15000}
    assert apps[UUID1] == {"compute_apps": 1, "compute_apps_memory_mib": 100}
    assert gm.parse_apps_csv("") == {}
    assert gm.parse_apps_csv("No running processes found\n") == {}
    with pytest.raises(gm.NvidiaSmiError):
        gm.parse_apps_csv("%s, 4101\n" % UUID0)


# ---- engine /metrics

@pytest.mark.parametrize("kv_name", ["kv_cache_usage_perc", "gpu_cache_usage_perc"])
def test_vllm_snapshot_reads_both_kv_cache_names(kv_name):
    snap = gm.engine_snapshot(vllm(kv=kv_name))
    assert snap["gauges"] == {"requests_running": 2, "requests_waiting": 1, "kv_cache_usage_pct": 25.0}
    assert snap["names"]["kv_cache_usage_pct"] == "vllm:" + kv_name
    assert snap["counters"]["generation_tokens_per_s"] == 1000


def test_counters_become_rates_and_histograms_interval_means():
    prev = gm.engine_snapshot(vllm(prompt=100, gen=1000, ok=4, ttft_sum=0.4, e2e_sum=8.0))
    cur = gm.engine_snapshot(vllm(prompt=300, gen=1500, ok=6, ttft_sum=1.4, e2e_sum=12.0))
    figures, reset = gm.engine_figures(prev, cur, 5.0)
    assert not reset
    assert figures["generation_tokens_per_s"] == 100.0 and figures["prompt_tokens_per_s"] == 40.0
    assert figures["requests_per_s"] == 0.4
    assert figures["ttft_mean_s"] == pytest.approx(0.5) and figures["e2e_latency_mean_s"] == pytest.approx(2.0)
    first, _reset = gm.engine_figures(None, cur, None)
    assert first["generation_tokens_per_s"] is None and first["requests_running"] == 2


def test_counter_going_down_is_a_reset_not_a_negative_rate():
    prev = gm.engine_snapshot(vllm(gen=5000, ok=40))
    cur = gm.engine_snapshot(vllm(gen=10, ok=1))
    figures, reset = gm.engine_figures(prev, cur, 5.0)
    assert reset and figures["generation_tokens_per_s"] is None and figures["ttft_mean_s"] is None


def test_no_new_requests_means_no_latency_not_zero():
    snap = gm.engine_snapshot(vllm())
    figures, _reset = gm.engine_figures(snap, snap, 5.0)
    assert figures["generation_tokens_per_s"] == 0 and figures["ttft_mean_s"] is None


def test_tgi_names():
    prev, cur = gm.engine_snapshot(TGI_METRICS % 500), gm.engine_snapshot(TGI_METRICS % 800)
    figures, _reset = gm.engine_figures(prev, cur, 10.0)
    assert figures["requests_running"] == 5 and figures["requests_waiting"] == 3
    assert figures["generation_tokens_per_s"] == 30.0
    assert cur["names"]["generation_tokens_per_s"] == "tgi_request_generated_tokens_sum"


def test_metrics_without_engine_names_are_not_known():
    assert not gm.engine_snapshot("python_gc_objects_collected_total 12\n")["known"]


# ---- the sampling loop

class FakeCluster(object):
    """Plays the pod and the engine; every call answers from a script, no API server involved."""

    def __init__(self, pods, gpu_outputs, metrics=None):
        self.pods = list(pods)
        self.gpu_outputs = list(gpu_outputs)
        self.metric_texts = list(metrics or [])
        self.execs = []
        self.t = 1000.0

    def clock(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds

    def pod(self):
        value = self.pods.pop(0) if len(self.pods) > 1 else self.pods[0]
        if isinstance(value, Exception):
            raise value
        return value

    def exec_fn(self, pod, argv):
        self.execs.append((pod, argv[1].split("=")[0]))
        if argv[1].startswith("--query-compute-apps"):
            return "%s, 4101, 15000\n" % UUID0, 0
        out = self.gpu_outputs.pop(0) if len(self.gpu_outputs) > 1 else self.gpu_outputs[0]
        if isinstance(out, Exception):
            raise out
        return out

    def metrics(self, pod):
        value = self.metric_texts.pop(0) if len(self.metric_texts) > 1 else self.metric_texts[0]
        if isinstance(value, Exception):
            raise value
        return value


def pod(name, restarts=0):
    return {"name": name, "uid": name + "-uid", "restarts": restarts}


def monitor(cluster, with_metrics=True):
    return gm.Monitor("wabc123-default", cluster.pod, cluster.exec_fn,
                      cluster.metrics if with_metrics else None, clock=cluster.clock, sleep=cluster.sleep)


def test_pod_replaced_and_restarted_mid_run_is_recorded_not_a_crash():
    cluster = FakeCluster(
        pods=[pod("vllm-a"), pod("vllm-a"), None, pod("vllm-b"), pod("vllm-b", restarts=1), pod("vllm-b", 1)],
        gpu_outputs=[(TWO_GPUS, 0), (TWO_GPUS, 0), (TWO_GPUS, 0),
                     IccError("exec into pod vllm-b failed (HTTP 500): container not running"), (TWO_GPUS, 0)],
        metrics=[vllm(gen=0), vllm(gen=500), vllm(gen=10), vllm(gen=20), vllm(gen=520)])
    mon = monitor(cluster)
    rows = mon.run(count=6, interval=5)
    events = [e["event"] for e in mon.events]
    assert events[0] == "engine pod vllm-a is gone; no Running pod found"
    assert "engine pod (none) replaced by vllm-b" in events
    assert "engine container of vllm-b restarted (restart count 0 -> 1)" in events
    assert [r["sample"] for r in rows if r["gpu_index"] is None] == [2, 4]
    no_pod = [r for r in rows if r["sample"] == 2][0]
    assert no_pod["error"] == "no Running engine pod" and no_pod["pod"] is None
    exec_failed = [r for r in rows if r["sample"] == 4][0]
    assert "container not running" in exec_failed["error"] and exec_failed["pod_restarts"] == 1
    assert len(rows) == 2 * 4 + 2 and mon.pods == ["vllm-a", "vllm-b"]
    # The rate after a restart starts afresh instead of mixing two engines' counters.
    rates = [r["generation_tokens_per_s"] for r in rows if r["gpu_index"] == 0]
    assert rates[:2] == [None, 100.0] and rates[2] is None
    summary = gm.summarize(mon)
    assert summary["samples"] == 6 and summary["samples_with_gpu_data"] == 4
    assert len(summary["events"]) == 3 and len(summary["errors"]) == 1


def test_one_compact_line_per_sample_while_it_samples():
    cluster = FakeCluster(
        pods=[pod("vllm-a"), pod("vllm-a"), None],
        gpu_outputs=[(TWO_GPUS, 0), (TWO_GPUS, 0)],
        metrics=[vllm(gen=0), vllm(gen=500)])
    lines = []
    monitor(cluster).run(count=3, interval=5,
                         on_sample=lambda i, total, rows: lines.append(gm.sample_line(i, total, rows)))
    assert len(lines) == 3, lines
    assert lines[0].startswith("sample 1/3  GPU0 ") and " | GPU1 " in lines[0], lines[0]
    assert re.search(r"GPU0 \d+% \d+\.\d/\d+\.\d GiB \S+ W \S+ C", lines[0]), lines[0]
    # the engine's rate needs two samples: none in the first, 500 tokens in 5 s in the second
    assert lines[0].endswith("engine - tok/s, 2 running") and "engine 100.0 tok/s" in lines[1], lines[:2]
    assert lines[2] == "sample 3/3  no Running engine pod", lines[2]


def test_missing_nvidia_smi_fails_the_first_sample_clearly():
    cluster = FakeCluster([pod("vllm-a")], [('exec: "nvidia-smi": executable file not found in $PATH', 127)])
    with pytest.raises(gm.NvidiaSmiError, match="is not in the engine container"):
        monitor(cluster).run(count=3, interval=1)
    assert len(cluster.execs) == 1


def test_no_pod_at_the_start_is_a_clear_error():
    cluster = FakeCluster([None], [(TWO_GPUS, 0)])
    mon = gm.Monitor("wabc123-default", cluster.pod, cluster.exec_fn, target="selector app=x")
    with pytest.raises(IccError, match="No Running engine pod in wabc123-default matches selector app=x"):
        mon.run(count=2, interval=1)
    assert cluster.execs == []


def test_permission_denied_is_fatal():
    cluster = FakeCluster([PermissionDeniedError("pods/exec forbidden")], [(TWO_GPUS, 0)])
    with pytest.raises(PermissionDeniedError):
        monitor(cluster).run(count=2, interval=1)


def test_engine_without_metrics_is_recorded_as_not_available():
    cluster = FakeCluster([pod("llama")], [(TWO_GPUS, 0)], metrics=[None])
    mon = monitor(cluster)
    rows = mon.run(count=2, interval=1)
    assert {r["engine_metrics"] for r in rows} == {"not available"}
    assert mon.metrics_status.startswith("not available")
    summary = gm.summarize(mon)
    assert summary["tokens_per_s"] is None and summary["errors"] == []


def test_metrics_errors_are_recorded():
    cluster = FakeCluster([pod("vllm-a")], [(TWO_GPUS, 0)], metrics=[IccError("GET /metrics answered HTTP 500.")])
    mon = monitor(cluster)
    mon.run(count=1, interval=1)
    assert mon.errors == ["sample 0: /metrics: GET /metrics answered HTTP 500."]


def test_duration_bounds_the_number_of_samples():
    cluster = FakeCluster([pod("vllm-a")], [(TWO_GPUS, 0)])
    mon = monitor(cluster, with_metrics=False)
    mon.run(duration=10, interval=5)
    assert sorted({r["sample"] for r in mon.rows}) == [0, 1, 2]
    assert {r["engine_metrics"] for r in mon.rows} == {"not asked"}


# ---- summary and files

def run_busy():
    cluster = FakeCluster([pod("vllm-a")], [(TWO_GPUS, 0), (TWO_GPUS.replace("98, 61, 15112", "50, 30, 15300"), 0)],
                          metrics=[vllm(gen=0), vllm(gen=500), vllm(gen=1500)])
    mon = monitor(cluster)
    mon.run(count=3, interval=5)
    return mon


def test_summary_min_mean_max_peak_tokens_and_throttling():
    summary = gm.summarize(run_busy())
    gpu0 = summary["gpus"][0]
    assert gpu0["metrics"]["gpu_utilization_pct"] == {"min": 50, "mean": 66.0, "max": 98, "samples": 3}
    assert gpu0["peak_memory_used_mib"] == 15300 and summary["peak_memory_used_mib"] == 15300
    assert gpu0["throttling"] == [{"reason": "sw_power_cap", "samples": 3}]
    assert summary["gpus"][1]["not_reported"] == ["power_draw_w"]
    assert summary["tokens_per_s"] == {"min": 100.0, "mean": 150.0, "max": 200.0, "samples": 2}
    assert summary["engine"]["metrics"] == "available"
    assert summary["engine"]["names"]["kv_cache_usage_pct"] == "vllm:kv_cache_usage_perc"
    lines = gm.summary_lines(summary)
    assert lines[0] == "3 samples of wabc123-default (vllm-a), 2 GPU(s)"
    assert "throttling: GPU 0 sw_power_cap (3 samples)" in lines


def test_files_tidy_csv_summary_html_png(tmp_path):
    mon = run_busy()
    summary, files = gr.write_outputs(mon, str(tmp_path / "out"), 1796000000.0, ["csv", "summary", "html", "png"])
    stamp = "gpu-monitor_wabc123-default_20261130T005320Z"
    assert files["csv"] == str(tmp_path / "out" / (stamp + ".csv"))
    with open(files["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == gm.COLUMNS and len(rows) == 6
    for row in rows:
        datetime.datetime.fromisoformat(row["timestamp"])  # ISO 8601
        assert row["timestamp"].endswith("+00:00")
        for col in ("gpu_utilization_pct", "memory_used_mib", "temperature_c", "elapsed_s"):
            float(row[col])  # plain numbers, no units inside
    assert rows[0]["memory_used_mib"] == "15112" and rows[1]["power_draw_w"] == ""
    assert rows[2]["generation_tokens_per_s"] == "100"
    assert all(col.endswith(("_pct", "_mib", "_c", "_w", "_mhz", "_s", "_count")) or col in (
        "timestamp", "sample", "namespace", "pod", "pod_restarts", "gpu_index", "gpu_name", "gpu_uuid",
        "throttle_bitmask", "throttle_reasons", "ecc_errors_uncorrected", "compute_apps", "requests_running",
        "requests_waiting", "engine_metrics", "error") for col in rows[0])
    saved = json.loads(pathlib.Path(files["summary"]).read_text())
    assert saved["gpus"][0]["peak_memory_used_mib"] == 15300 and saved["files"] == files
    html = pathlib.Path(files["html"]).read_text()
    assert html.count("<svg") == len(gr.PANELS) and "<script" not in html and "http" not in html.split("<svg")[0]
    assert "GPU 1: no reading" in html  # the power panel says which GPU had no power value
    png = pathlib.Path(files["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert summary["files"] == files


def test_check_mode_writes_nothing(tmp_path):
    _summary, files = gr.write_outputs(run_busy(), str(tmp_path / "out"), 1796000000.0, ["csv", "html"], write=False)
    assert sorted(files) == ["csv", "html"] and not (tmp_path / "out").exists()


def test_svg_panel_gaps_and_empty():
    svg = gr.svg_panel("GPU utilisation", "%", [("GPU 0", [(0, 10), (5, None), (10, 30), (15, 40)])], 15, (0, 100))
    assert svg.count("<circle") == 1 and svg.count("<polyline") == 1
    empty = gr.svg_panel("Tokens", "tokens/s", [("engine", [(0, None)])], 1, note="engine metrics: not available")
    assert "engine metrics: not available" in empty


# ---- the module's input checks (before any cluster access)

def run_main(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            gpu_monitor_sample.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, variable", [
    ({"interval": 0}, "interval=0"), ({"count": 0}, "count=0"), ({"duration": -1}, "duration=-1"),
])
def test_main_refuses_bad_plans_before_touching_the_cluster(args, variable, capsys, tmp_path):
    args.update(dest=str(tmp_path / "out"), kubeconfig=str(tmp_path / "missing"))
    out = run_main(args, capsys)
    assert out["failed"] and out["msg"].startswith(variable) and out["error"] == "InputError"
    assert not (tmp_path / "out").exists()


def test_main_count_and_duration_are_exclusive(capsys, tmp_path):
    out = run_main({"count": 2, "duration": 5, "dest": str(tmp_path)}, capsys)
    assert out["failed"] and "mutually exclusive" in out["msg"]


def test_throttling_is_marked_in_the_chart_of_its_cause():
    rows = [r for r in run_busy().rows if r["gpu_index"] is not None]
    power = gr._throttle_points(rows, "power_draw_w")  # pylint: disable=protected-access
    assert [(p[1], p[2]) for p in power] == [(247.31, "sw_power_cap")] * 3
    assert gr._throttle_points(rows, "temperature_c") == []  # pylint: disable=protected-access
    html_panel = gr.svg_panel("Power draw", "W", [("GPU 0", [(0, 247.31)])], 1, marks=power)
    assert html_panel.count('fill="#e00000"') == 4 and "sw_power_cap" in html_panel


def test_a_driver_without_the_old_throttle_field_name_gets_the_new_one():
    asked = []

    def exec_fn(_pod, argv):
        asked.append(argv[1])
        if "clocks_throttle_reasons.active" in argv[1]:
            return 'Field "clocks_throttle_reasons.active" is not a valid field to query.\n\n', 2
        if argv[1].startswith("--query-compute-apps"):
            return "", 0
        return TWO_GPUS, 0
    mon = gm.Monitor("wabc123-default", lambda: pod("vllm-a"), exec_fn, clock=lambda: 1.0, sleep=lambda _s: None)
    mon.run(count=2, interval=1)
    gpu_queries = [a for a in asked if a.startswith("--query-gpu")]
    assert len(gpu_queries) == 3  # the old name once, then only the new one
    assert "clocks_event_reasons.active" in gpu_queries[1] and gpu_queries[1] == gpu_queries[2]
    assert len(mon.rows) == 4 and mon.errors == []


def test_deprecated_values_count_as_not_available():
    line = TWO_GPUS.splitlines()[0].replace("1380", "[Requested functionality has been deprecated]")
    (gpu,) = gm.parse_gpu_csv(line)
    assert gpu["sm_clock_mhz"] is None and gpu["problems"] == []
