"""llm_health against the real engine (llama.cpp serving SmolLM2), through a Service of the sandbox,
and against small real HTTP servers that misbehave on purpose."""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest

from sandboxlib import MODEL, NS_ONLY, READER, REPO, gpu_workload, http_json, kubectl_apply, run_playbook, wait_until


def _engine_objects(name, ns):
    """The engine Deployment and Service, plus a Service that selects no pod."""
    empty = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name + "-empty", "namespace": ns},
             "spec": {"selector": {"app": name + "-nothing"}, "ports": [{"port": 8000, "targetPort": 8000}]}}
    return gpu_workload(name, ns) + [empty]


def _engine(sandbox, ns):
    name = "health-%s" % uuid.uuid4().hex[:6]
    kc = sandbox.kubeconfig(ns)
    proc = kubectl_apply(sandbox, _engine_objects(name, ns), kubeconfig=kc)
    assert proc.returncode == 0, proc.stderr
    try:
        sandbox.kubectl("-n", ns, "rollout", "status", "deployment/%s" % name, "--timeout=60s", kubeconfig=kc)
        yield name
    finally:
        sandbox.kubectl("-n", ns, "delete", "deployment,service", name, "%s-empty" % name, "--wait=false",
                        "--ignore-not-found", kubeconfig=kc)


@pytest.fixture(scope="module")
def engine(sandbox):
    yield from _engine(sandbox, NS_ONLY)


def test_cluster_reader_student_too(sandbox):
    """The other kind of student (may read nodes and pods cluster-wide) in its own namespace."""
    for name in _engine(sandbox, READER):
        run = run_playbook(playbook("""
    - name: Health
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %s
        model: "{{ icc_model }}"
        max_tokens: 8
""" % name, hosts=READER))
        res = run.result("Health")
        assert not res.get("failed") and res["changed"] is False, res.get("msg")
        assert res["answer"].strip() and res["stream"]["tokens"] > 0


def playbook(tasks, hosts=NS_ONLY):
    return "\n- hosts: %s\n  gather_facts: false\n  tasks:\n%s" % (hosts, tasks)


def namespace_state(sandbox):
    return {(i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"]
            for i in sandbox.kubectl_json("-n", NS_ONLY, "get", "deployments,services,pods,configmaps,secrets")["items"]}


def test_service_checks_check_mode_and_small_load(sandbox, engine):
    before = namespace_state(sandbox)
    task = """
    - name: %%s
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %s
        model: "{{ icc_model }}"
        max_tokens: 12
        metrics: true
        requests: %%d
      check_mode: %%s
""" % engine
    run = run_playbook(playbook(task % ("Health", 2, "false") + task % ("Checked", 0, "true")))
    assert run.failed() == 0 and run.changed() == 0, run.stdout[-3000:]
    res = run.result("Health")
    status = {c["name"]: c["status"] for c in res["checks"]}
    # llama.cpp's server has no /health, /version, /info or /metrics: absent, not failed.
    assert status == {"health": "absent", "version": "absent", "info": "absent", "models": "ok", "chat": "ok",
                      "stream": "ok", "metrics": "absent"}
    assert res["model"] == MODEL and MODEL in res["models"] and res["answer"].strip()
    assert res["usage"]["completion_tokens"] > 0 and res["metrics"] == {}
    stream = res["stream"]
    assert stream["text"].strip() and stream["ttft_s"] is not None and stream["tokens"] > 0
    assert stream["tokens_source"] == "chunks" and stream["finish_reason"] in ("stop", "length")
    assert res["load"]["completed"] == 2 and res["load"]["failed"] == 0 and res["load"]["output_tokens"] > 0
    checked = run.result("Checked")
    assert not checked.get("failed") and checked["changed"] is False and checked["answer"].strip()
    assert namespace_state(sandbox) == before


def test_a_long_wait_prints_progress_lines(sandbox, engine):
    """Issue 17: while the model does not answer (here: no Ready pod behind the Service, as while a
    pod pulls its image or loads its model), llm_health prints a line about every 15 s with the
    elapsed time and the reason, and fails once at the end."""
    tasks = """
    - name: No pods for a while
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %(svc)s-empty
        wait_timeout: 40
        sleep: 2
      ignore_errors: true
""" % dict(svc=engine)
    run = run_playbook(playbook(tasks))
    lines = [line for line in run.stdout.splitlines() if "waiting for the model to answer" in line]
    # about every 15 s: at 15-17 s and 30-34 s (an attempt every 2 s), none after the wait is over
    assert len(lines) == 2, run.stdout[-3000:]
    assert re.match(r"^\S+: 1[5-7]s waiting", lines[0]) and re.match(r"^\S+: 3[0-4]s waiting", lines[1]), lines
    assert all("No Ready pod behind Service" in line for line in lines), lines
    res = run.result("No pods for a while")
    assert res["failed"] and res["msg"].count("No Ready pod behind Service") == 1


def test_wrong_model_missing_pods_and_wait_timeout(sandbox, engine):
    tasks = """
    - name: Wrong model
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %(svc)s
        model: meta-llama/Not-Served
      ignore_errors: true
    - name: No pods
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %(svc)s-empty
        wait_timeout: 10
        sleep: 1
      ignore_errors: true
    - name: No service
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: does-not-exist
      ignore_errors: true
    - name: Wrong model while waiting
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        service: %(svc)s
        model: meta-llama/Not-Served
        stream: false
        wait_timeout: 15
        sleep: 1
      ignore_errors: true
""" % dict(svc=engine)
    run = run_playbook(playbook(tasks))
    wrong = run.result("Wrong model")
    assert wrong["failed"] and "does not serve 'meta-llama/Not-Served'" in wrong["msg"] and MODEL in wrong["msg"]
    assert [c["status"] for c in wrong["last_observation"]["checks"]][-1] == "failed"
    empty = run.result("No pods")
    assert empty["failed"] and "No Ready pod behind Service" in empty["msg"] and empty["attempts"] >= 2
    assert empty["elapsed"] >= 2 and empty["last_observation"]["error"]
    missing = run.result("No service")
    assert missing["failed"] and "does not exist" in missing["msg"]
    waited = run.result("Wrong model while waiting")
    assert waited["failed"] and waited["msg"].startswith("Still failing after") and waited["attempts"] >= 2
    assert [c["name"] for c in waited["last_observation"]["checks"]][-1] == "models"


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """Path prefix = the misbehaviour; everything else answers like a healthy OpenAI server."""

    protocol_version = "HTTP/1.1"
    seen_auth = []
    health_calls = 0

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        mode, _sep, path = self.path.lstrip("/").partition("/")
        self.seen_auth.append(self.headers.get("Authorization"))
        if mode == "unauth":
            return self._send(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
        if mode == "loading" and path == "health":
            Misbehaving.health_calls += 1
            if Misbehaving.health_calls <= 2:  # like TGI and vLLM while the weights load
                return self._send(503, {"error": "Model is loading"})
            return self._send(200, b"", "text/plain")
        if path == "v1/models":
            if mode == "notfound":
                return self._send(404, {"detail": "Not Found"})
            if mode == "garbage":
                return self._send(200, b"<html>proxy error</html>{", "text/html")
            return self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        return self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        mode = self.path.lstrip("/").partition("/")[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if mode == "boom":
            return self._send(500, {"error": {"message": "CUDA error: out of memory", "code": 500}})
        if mode == "slow":
            time.sleep(4)
        if not body.get("stream"):
            return self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Berlin"},
                                                 "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in ("Ber", "lin"):
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode())
            self.wfile.flush()
        if mode == "cut":
            self.close_connection = True
            return
        self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')


@pytest.fixture(scope="module")
def bad_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_misbehaviour_gives_clear_errors(bad_server):
    closed = "http://127.0.0.1:%d" % free_port()
    cases = [
        ("Refused", dict(base_url=closed), "Connection refused by %s" % closed),
        ("Unauthorized", dict(base_url=bad_server + "/unauth", llm_api_key="sk-wrong-key-123"),
         "HTTP 401: Invalid API key"),
        # The old name of llm_api_key still works, with a deprecation.
        ("Old option name", dict(base_url=bad_server + "/unauth", api_key="sk-wrong-key-123"),
         "HTTP 401: Invalid API key"),
        ("Not found", dict(base_url=bad_server + "/notfound"), "HTTP 404: Not Found"),
        ("Server error", dict(base_url=bad_server + "/boom"), "HTTP 500: CUDA error: out of memory"),
        ("Garbage JSON", dict(base_url=bad_server + "/garbage"), "not JSON"),
        ("Cut stream", dict(base_url=bad_server + "/cut"), "stream was cut off after 2 content chunks"),
        ("Timeout", dict(base_url=bad_server + "/slow", timeout=1), "timed out after 1s"),
        ("Healthy", dict(base_url=bad_server + "/fine", metrics=True), None),
        ("Loading", dict(base_url=bad_server + "/loading", wait_timeout=60, sleep=1), None),
    ]
    tasks = ""
    for name, args, _needle in cases:
        tasks += "    - name: %s\n      haw_icc.llm.llm_health: %s\n      ignore_errors: true\n" % (name, json.dumps(args))
    run = run_playbook("- hosts: localhost\n  connection: local\n  gather_facts: false\n"
                       "  vars: {ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n  tasks:\n" + tasks)
    for name, _args, needle in cases:
        res = run.result(name)
        if needle is None:
            assert not res.get("failed") and res["answer"] == "Berlin" and res["stream"]["tokens"] == 2, res
            assert res["metrics"] == {} if name == "Healthy" else "metrics" not in res
            assert res["changed"] is False
        else:
            assert res.get("failed") and needle in res["msg"], (name, res.get("msg"))
    loading = run.result("Loading")
    assert loading["attempts"] == 3 and Misbehaving.health_calls == 3
    assert loading["checks"][0]["name"] == "health" and loading["checks"][0]["status"] == "ok"
    assert "hint" not in run.result("Unauthorized") and "llm_api_key" in run.result("Unauthorized")["msg"]
    old = run.result("Old option name")
    assert any("api_key" in d["msg"] and d.get("version") == "1.0.0" for d in old.get("deprecations", [])), old
    assert "Bearer sk-wrong-key-123" in Misbehaving.seen_auth
    assert "sk-wrong-key-123" not in run.stdout


# ---- load mode, checked against the server's own token counts ---------------------------------

class Recorder(http.server.BaseHTTPRequestHandler):
    """A pass-through proxy in front of the real engine that records every request body."""

    protocol_version = "HTTP/1.0"
    upstream = None
    bodies = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _forward(self, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.end_headers()
        while True:
            data = resp.read1(65536)
            if not data:
                break
            self.wfile.write(data)
            self.wfile.flush()
        conn.close()

    def do_GET(self):
        self._forward()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.bodies.append(json.loads(body))
        self._forward(body)


@pytest.fixture(scope="module")
def queueing_engine(sandbox, tmp_path_factory):
    """A second llama.cpp server on the same weights with interrupt_requests off, so that concurrent
    requests queue instead of aborting each other (the sandbox engine aborts them)."""
    cfg = json.loads((sandbox.root / "engine.json").read_text())
    port = free_port()
    cfg.update(port=port, interrupt_requests=False)
    cfg["models"] = [dict(cfg["models"][0], n_threads=1)]
    path = tmp_path_factory.mktemp("engine") / "engine.json"
    path.write_text(json.dumps(cfg))
    log = open(path.parent / "engine.log", "w")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), "-m", "llama_cpp.server", "--config_file",
                             str(path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _up(port) or proc.poll() is not None, timeout=120, what="second llama.cpp server")
        assert proc.poll() is None, (path.parent / "engine.log").read_text()[-2000:]
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _up(port):
    try:
        http_json("http://127.0.0.1:%d/v1/models" % port, timeout=2)
        return True
    except OSError:
        return False


def test_load_figures_agree_with_the_servers_token_counts(queueing_engine):
    Recorder.upstream = queueing_engine
    Recorder.bodies = []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    requests = 6
    try:
        run = run_playbook("""
- hosts: localhost
  connection: local
  gather_facts: false
  vars: {ansible_python_interpreter: '{{ ansible_playbook_python }}'}
  tasks:
    - name: Load
      haw_icc.llm.llm_health:
        base_url: http://127.0.0.1:%d
        model: %s
        question: Name three colours of the rainbow.
        max_tokens: 24
        requests: %d
        concurrency: 2
""" % (proxy.server_address[1], MODEL, requests))
    finally:
        proxy.shutdown()
        proxy.server_close()
    res = run.result("Load")
    assert not res.get("failed"), res.get("msg")
    load = res["load"]
    assert load["completed"] == requests and load["failed"] == 0 and load["concurrency"] == 2
    streamed = [b for b in Recorder.bodies if b.get("stream")]
    assert len(streamed) == requests + 1          # the stream check, then the load requests
    # Independent count: the server's own usage figures for exactly the requests of the run, replayed
    # without streaming (temperature 0, so the same tokens are generated).
    server_tokens = 0
    for body in streamed[1:]:
        replay = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        server_tokens += http_json("http://127.0.0.1:%d/v1/chat/completions" % queueing_engine, replay,
                                   timeout=120)["usage"]["completion_tokens"]
    assert server_tokens > 0
    assert abs(load["output_tokens"] - server_tokens) <= 0.05 * server_tokens, (load, server_tokens)
    # The rates are the counts over the measured duration.
    assert load["output_tokens_per_s"] == pytest.approx(load["output_tokens"] / load["duration_s"], rel=0.01)
    assert load["requests_per_s"] == pytest.approx(requests / load["duration_s"], rel=0.01)
    lat, ttft = load["latency_s"], load["ttft_s"]
    assert 0 < ttft["p50"] <= ttft["p95"] <= ttft["max"] and 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert ttft["max"] <= lat["max"]
