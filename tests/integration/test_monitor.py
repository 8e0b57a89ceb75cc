"""monitor.yml in the sandbox: nvidia-smi through the API server's exec (the sandbox's nvidia-smi test
double, tests/cluster/standin/nvidia-smi), the real llama.cpp engine (no /metrics) and a small real
HTTP server with vLLM-style /metrics; load through llm_health; a pod replaced mid-run."""

from __future__ import annotations

import csv
import datetime
import http.server
import json
import pathlib
import re
import threading
import uuid

import pytest

from sandboxlib import NS_ONLY, REPO, gpu_workload, kubectl_apply, run_playbook, wait_until

PLAYBOOK = REPO / "playbooks" / "monitor.yml"
ROLE = "haw_icc.llm.gpu_monitor : "  # task names of a role carry its name
ENGINE_LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/component": "engine",
                 "app.kubernetes.io/part-of": "haw-icc-llm"}
GPUS = 4  # what the stand-in reports
# The CSV header, in order: the contract of the file.
COLUMNS = ("timestamp,elapsed_s,sample,namespace,pod,pod_restarts,gpu_index,gpu_name,gpu_uuid,temperature_c,"
           "gpu_utilization_pct,memory_utilization_pct,memory_used_mib,memory_total_mib,power_draw_w,sm_clock_mhz,"
           "throttle_bitmask,ecc_errors_uncorrected,memory_used_pct,throttle_reasons,compute_apps,"
           "compute_apps_memory_mib,requests_running,requests_waiting,kv_cache_usage_pct,prompt_tokens_per_s,"
           "generation_tokens_per_s,requests_per_s,ttft_mean_s,e2e_latency_mean_s,inter_token_latency_mean_s,"
           "engine_metrics,error").split(",")


@pytest.fixture(scope="module")
def engine(sandbox):
    name = "gm-%s" % uuid.uuid4().hex[:6]
    kc = sandbox.kubeconfig(NS_ONLY)
    proc = kubectl_apply(sandbox, gpu_workload(name, NS_ONLY, labels=ENGINE_LABELS,
                                               image="registry.invalid/vllm-openai:v0.8.5",
                                               limits={"cpu": "500m", "memory": "256Mi"}), kubeconfig=kc)
    assert proc.returncode == 0, proc.stderr
    try:
        sandbox.kubectl("-n", NS_ONLY, "rollout", "status", "deployment/%s" % name, "--timeout=60s", kubeconfig=kc)
        yield name
    finally:
        sandbox.kubectl("-n", NS_ONLY, "delete", "deployment,service", name, "--wait=false", "--ignore-not-found",
                        kubeconfig=kc)


@pytest.fixture()
def standin(sandbox):
    """Controls the nvidia-smi test double of this sandbox (see its header): varying values, a call log."""
    control = pathlib.Path(sandbox.root) / "nvidia-smi-standin.json"
    log = pathlib.Path(sandbox.root) / ("nvidia-smi-calls-%s.log" % uuid.uuid4().hex[:6])
    control.write_text(json.dumps({"vary": True, "log": str(log)}))
    try:
        yield log
    finally:
        control.unlink()
        if log.exists():
            log.unlink()


def monitor(engine, dest, check=False, **extra):
    extra_vars = {"gpu_monitor_selector": "haw-icc-test=%s" % engine, "gpu_monitor_interval": 1,
                  "gpu_monitor_count": 3, "gpu_monitor_dest": str(dest)}
    extra_vars.update(extra)
    return run_playbook(PLAYBOOK, limit=NS_ONLY, extra_vars=extra_vars, check=check)


def read_outputs(run, dest):
    result = run.result(ROLE + "Sample the GPUs and the engine")
    files = result["files"]
    assert sorted(files) == ["csv", "html", "png", "summary"]
    assert sorted(str(p) for p in pathlib.Path(dest).iterdir()) == sorted(files.values())
    for path in files.values():
        assert pathlib.Path(path).name.startswith("gpu-monitor_%s_20" % NS_ONLY)
    with open(files["csv"]) as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        assert reader.fieldnames == COLUMNS
    summary = json.loads(pathlib.Path(files["summary"]).read_text())
    assert summary == result["summary"]
    return result, rows, summary


def check_pictures(files):
    png = pathlib.Path(files["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    html = pathlib.Path(files["html"]).read_text()
    assert html.count("<svg") == 5 and html.count("<polyline") >= GPUS * 4 - 1  # the last GPU has no power line
    for title in ("GPU utilisation", "GPU memory used", "Temperature", "Power draw", "Tokens generated per second"):
        assert title in html
    assert "<script" not in html and "src=" not in html  # self-contained


def namespace_state(sandbox):
    return {(i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"]
            for i in sandbox.kubectl_json("-n", NS_ONLY, "get", "deployments,services,pods,configmaps,secrets")["items"]}


def test_real_engine_without_metrics_under_load(sandbox, engine, standin, tmp_path):
    """llama.cpp has no /metrics: recorded as not available; the load goes through llm_health."""
    before = namespace_state(sandbox)
    run = monitor(engine, tmp_path / "out", gpu_monitor_count=4, gpu_monitor_load=True,
                  gpu_monitor_load_service=engine, gpu_monitor_load_requests=2,
                  gpu_monitor_load_concurrency=1, gpu_monitor_load_max_tokens=16)
    assert run.rc == 0, run.failure_messages() or run.stderr
    result, rows, summary = read_outputs(run, tmp_path / "out")
    assert result["rows"] == len(rows) == 4 * GPUS
    assert [int(r["sample"]) for r in rows] == [s for s in range(4) for _g in range(GPUS)]
    assert [int(r["gpu_index"]) for r in rows] == list(range(GPUS)) * 4
    pod = sandbox.kubectl_json("-n", NS_ONLY, "get", "pods", "-l", "haw-icc-test=%s" % engine)["items"][0]
    for row in rows:
        assert row["namespace"] == NS_ONLY and row["pod"] == pod["metadata"]["name"]
        moment = datetime.datetime.fromisoformat(row["timestamp"])
        assert moment.tzinfo is not None
        assert row["gpu_name"] == "Tesla V100-PCIE-16GB" and row["memory_total_mib"] == "16384"
        assert 0 <= float(row["gpu_utilization_pct"]) <= 100 and float(row["memory_used_mib"]) > 0
        assert row["engine_metrics"] == "not available" and row["generation_tokens_per_s"] == ""
        assert row["error"] == ""
    # The stand-in's last GPU has no power reading: an empty cell, never a text.
    assert {r["power_draw_w"] for r in rows if r["gpu_index"] == str(GPUS - 1)} == {""}
    assert all(float(r["power_draw_w"]) > 0 for r in rows if r["gpu_index"] != str(GPUS - 1))
    # The samples really were taken in the pod, twice per sample (GPUs and compute apps).
    calls = standin.read_text().splitlines()
    assert len(calls) == 8 and sum("--query-compute-apps" in c for c in calls) == 4

    assert summary["samples"] == 4 and summary["gpu_count"] == GPUS and summary["namespace"] == NS_ONLY
    assert summary["engine"]["metrics"].startswith("not available") and summary["tokens_per_s"] is None
    assert summary["errors"] == [] and summary["events"] == []
    for gpu in summary["gpus"]:
        mine = [r for r in rows if r["gpu_index"] == str(gpu["index"])]
        util = [float(r["gpu_utilization_pct"]) for r in mine]
        assert gpu["metrics"]["gpu_utilization_pct"]["min"] == min(util)
        assert gpu["metrics"]["gpu_utilization_pct"]["max"] == max(util)
        assert gpu["metrics"]["gpu_utilization_pct"]["mean"] == pytest.approx(sum(util) / len(util), abs=0.001)
        assert gpu["peak_memory_used_mib"] == max(float(r["memory_used_mib"]) for r in mine)
    assert summary["gpus"][GPUS - 1]["not_reported"] == ["power_draw_w"]
    check_pictures(result["files"])
    load = run.result(ROLE + "Sample the GPUs and the engine")["load"]
    assert load["completed"] == 2 and load["failed"] == 0
    # Issue 17: one compact line per sample while it samples, and no "FAILED - RETRYING" of a wait.
    lines = [line for line in run.stdout.splitlines() if line.startswith("%s: sample " % NS_ONLY)]
    assert [line.split()[2] for line in lines] == ["1/4", "2/4", "3/4", "4/4"], run.stdout[-3000:]
    assert all(re.search(r" GPU0 \d+% [\d.]+/16\.0 GiB \S+ W \S+ C \| GPU1 ", line) for line in lines), lines
    assert run.retried_tasks() == []
    shown = "\n".join(run.result(ROLE + "Show what the GPUs and the engine did")["msg"])
    assert "4 samples of %s" % NS_ONLY in shown and "load: 2 requests completed" in shown
    after = namespace_state(sandbox)
    assert after == before  # sampling changes nothing on the cluster


def test_failed_load_is_reported_after_the_samples_are_written(sandbox, engine, standin, tmp_path):
    run = monitor(engine, tmp_path / "out", gpu_monitor_count=2, gpu_monitor_load=True,
                  gpu_monitor_load_service="no-such-service-%s" % engine, gpu_monitor_load_requests=1)
    assert run.rc != 0
    (msg,) = run.failure_messages()
    assert "The load (haw_icc.llm.llm_health) failed" in msg and "does not exist" in msg
    _result, rows, summary = read_outputs(run, tmp_path / "out")
    assert len(rows) == 2 * GPUS and summary["samples"] == 2
    shown = run.result(ROLE + "Show what the GPUs and the engine did")["msg"]
    assert any(line.startswith("load failed: ") for line in shown)


class EngineMetrics(http.server.BaseHTTPRequestHandler):
    """A real HTTP server with vLLM V0-style or TGI /metrics: every scrape 250 more generated tokens."""

    scrapes = 0
    flavour = "vllm"

    def do_GET(self):  # noqa: N802
        if self.path != "/metrics":
            self.send_error(404)
            return
        n = EngineMetrics.scrapes
        EngineMetrics.scrapes += 1
        if EngineMetrics.flavour == "vllm":
            body = ("# TYPE vllm:num_requests_running gauge\n"
                    'vllm:num_requests_running{model_name="m"} 3.0\n'
                    'vllm:num_requests_waiting{model_name="m"} 0.0\n'
                    'vllm:gpu_cache_usage_perc{model_name="m"} 0.25\n'
                    'vllm:prompt_tokens_total{model_name="m"} %d\n'
                    'vllm:generation_tokens_total{model_name="m"} %d\n'
                    'vllm:time_to_first_token_seconds_sum{model_name="m"} %f\n'
                    'vllm:time_to_first_token_seconds_count{model_name="m"} %d\n'
                    % (40 * n, 250 * n, 0.2 * n, n))
        else:
            body = ("tgi_batch_current_size 3\ntgi_queue_size 0\n"
                    "tgi_request_input_length_sum %d\ntgi_request_input_length_count %d\n"
                    "tgi_request_generated_tokens_sum %d\ntgi_request_generated_tokens_count %d\n"
                    "tgi_request_duration_sum %f\ntgi_request_duration_count %d\n"
                    % (40 * n, n, 250 * n, n, 1.5 * n, n))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("flavour", ["vllm", "tgi"])
def test_engine_metrics_become_rates(sandbox, engine, standin, tmp_path, flavour):
    EngineMetrics.flavour = flavour
    EngineMetrics.scrapes = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EngineMetrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = monitor(engine, tmp_path / "out", gpu_monitor_count=3,
                      gpu_monitor_metrics_url="http://127.0.0.1:%d/metrics" % server.server_address[1])
    finally:
        server.shutdown()
    assert run.rc == 0, run.failure_messages() or run.stderr
    result, rows, summary = read_outputs(run, tmp_path / "out")
    engine_rows = [r for r in rows if r["gpu_index"] == "0"]
    assert [r["engine_metrics"] for r in engine_rows] == ["ok"] * 3
    assert {r["requests_running"] for r in rows} == {"3"}
    assert engine_rows[0]["generation_tokens_per_s"] == ""  # a rate needs two samples
    for prev, cur in zip(engine_rows, engine_rows[1:]):
        seconds = float(cur["elapsed_s"]) - float(prev["elapsed_s"])
        assert float(cur["generation_tokens_per_s"]) == pytest.approx(250 / seconds, rel=0.01)
        assert float(cur["prompt_tokens_per_s"]) == pytest.approx(40 / seconds, rel=0.01)
        if flavour == "vllm":
            assert float(cur["ttft_mean_s"]) == pytest.approx(0.2)
        else:
            assert float(cur["e2e_latency_mean_s"]) == pytest.approx(1.5)
    assert summary["engine"]["metrics"] == "available"
    if flavour == "vllm":
        assert {r["kv_cache_usage_pct"] for r in rows} == {"25"}
        assert summary["engine"]["names"]["kv_cache_usage_pct"] == "vllm:gpu_cache_usage_perc"
    else:
        assert summary["engine"]["names"]["generation_tokens_per_s"] == "tgi_request_generated_tokens_sum"
    assert summary["tokens_per_s"]["samples"] == 2 and summary["tokens_per_s"]["min"] > 0
    check_pictures(result["files"])


def test_pod_replaced_mid_run_is_recorded(sandbox, engine, standin, tmp_path):
    kc = sandbox.kubeconfig(NS_ONLY)
    old = sandbox.kubectl_json("-n", NS_ONLY, "get", "pods", "-l", "haw-icc-test=%s" % engine,
                               kubeconfig=kc)["items"][0]["metadata"]["name"]
    box = {}
    worker = threading.Thread(target=lambda: box.update(run=monitor(engine, tmp_path / "out", gpu_monitor_count=8,
                                                                    gpu_monitor_interval=1.5)))
    worker.start()
    wait_until(lambda: standin.exists() and len(standin.read_text().splitlines()) >= 2, timeout=120,
               what="the first sample")
    sandbox.kubectl("-n", NS_ONLY, "delete", "pod", old, "--wait=false", kubeconfig=kc)
    worker.join(timeout=300)
    run = box["run"]
    assert run.rc == 0, run.failure_messages() or run.stderr
    _result, rows, summary = read_outputs(run, tmp_path / "out")
    pods = [r["pod"] for r in rows if r["pod"]]
    assert pods[0] == old and pods[-1] != old and len(summary["pods"]) == 2
    assert any("replaced by %s" % pods[-1] in e["event"] for e in summary["events"])
    assert summary["samples"] == 8
    # Samples that did not reach a pod are rows with an error, not a crash.
    for row in rows:
        assert row["gpu_index"] != "" or row["error"] != ""


def test_missing_nvidia_smi_is_a_clear_error_and_writes_nothing(sandbox, engine, tmp_path):
    run = monitor(engine, tmp_path / "out", gpu_monitor_nvidia_smi="/opt/no-such-dir/nvidia-smi")
    assert run.rc != 0
    (msg,) = run.failure_messages()
    assert "/opt/no-such-dir/nvidia-smi is not in the engine container" in msg
    assert "/usr/local/nvidia/bin/nvidia-smi" in msg
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("control, expected", [
    ({"fail": "driver"}, "nvidia-smi cannot talk to the NVIDIA driver"),
    ({"gpus": 0}, "nvidia-smi found no GPU in the container"),
])
def test_broken_gpu_setup_fails_the_first_sample_clearly(sandbox, engine, tmp_path, control, expected):
    path = pathlib.Path(sandbox.root) / "nvidia-smi-standin.json"
    path.write_text(json.dumps(control))
    try:
        run = monitor(engine, tmp_path / "out")
    finally:
        path.unlink()
    assert run.rc != 0
    (msg,) = run.failure_messages()
    assert expected in msg
    assert not (tmp_path / "out").exists()


def test_check_mode_samples_but_writes_nothing(sandbox, engine, standin, tmp_path):
    before = namespace_state(sandbox)
    run = monitor(engine, tmp_path / "out", check=True, gpu_monitor_count=2)
    assert run.rc == 0, run.failure_messages() or run.stderr
    result = run.result(ROLE + "Sample the GPUs and the engine")
    assert result["rows"] == 2 * GPUS and result["summary"]["samples"] == 2
    assert not (tmp_path / "out").exists()
    assert namespace_state(sandbox) == before


def test_no_engine_pod_at_the_start_is_a_clear_error(sandbox, tmp_path):
    selector = "haw-icc-test=nothing-%s" % uuid.uuid4().hex[:6]
    run = run_playbook(PLAYBOOK, limit=NS_ONLY, extra_vars={
        "gpu_monitor_selector": selector, "gpu_monitor_count": 1, "gpu_monitor_dest": str(tmp_path / "out")})
    assert run.rc != 0
    (msg,) = run.failure_messages()
    assert "No Running engine pod in %s matches selector %s" % (NS_ONLY, selector) in msg and "deploy" in msg
    assert not (tmp_path / "out").exists()
