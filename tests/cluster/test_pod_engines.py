"""The sandbox's engine per pod (pod_engines.py), driven as pod_runner.py drives it (no cluster needed):
a real llama.cpp server per request, with the pod's served names, context length and API key."""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pod_engines  # noqa: E402  pylint: disable=wrong-import-position
import pod_runner  # noqa: E402  pylint: disable=wrong-import-position

KEY = "sk-pod-engine-test"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def server():
    srv = pod_runner.LineServer("engine server", [sys.executable, str(HERE / "pod_engines.py"), "--serve"])
    yield srv
    srv.proc.stdin.close()
    srv.proc.wait(timeout=30)


def http(port, path, body=None, key=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with OPENER.open(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def start(server, tmp_path, uid, **req):
    req = dict({"op": "start", "id": uid, "names": ["Org/Model-A"], "n_ctx": 512, "api_key": None,
                "log": str(tmp_path / ("%s.log" % uid))}, **req)
    started = server.call(req)
    assert started["ok"], started
    assert pod_runner.wait_answers(started["port"], 60), "the engine did not answer within 60 s"
    return started


def test_the_pods_names_and_key_and_401_without_it(server, tmp_path):
    engine = start(server, tmp_path, "uid-a", names=["Org/Model-A", "alias-b"], api_key=KEY)
    port = engine["port"]
    code, body = http(port, "/v1/models")
    assert code == 401, body
    code, body = http(port, "/v1/models", key="sk-wrong")
    assert code == 401, body
    code, body = http(port, "/v1/models", key=KEY)
    assert code == 200 and [m["id"] for m in body["data"]] == ["Org/Model-A", "alias-b"]
    code, body = http(port, "/v1/chat/completions", key=KEY,
                      body={"model": "alias-b", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
    assert code == 200 and body["choices"][0]["message"]["content"] is not None, body
    log = (tmp_path / "uid-a.log").read_text().splitlines()
    # CRI log lines (what kwok serves as kubectl logs), naming what the engine serves.
    assert all(" stderr F " in line for line in log), log[:3]
    assert any("serving Org/Model-A, alias-b, n_ctx 512, API key required" in line for line in log), log[:3]
    assert KEY not in "\n".join(log)
    assert server.call({"op": "stop", "id": "uid-a"}) == {"ok": True, "stopped": True}
    with pytest.raises(ProcessLookupError):
        os.kill(engine["pid"], 0)


def test_no_key_no_check_and_the_context_length_is_the_pods(server, tmp_path):
    engine = start(server, tmp_path, "uid-b", n_ctx=256)
    port = engine["port"]
    code, body = http(port, "/v1/models")
    assert code == 200 and [m["id"] for m in body["data"]] == ["Org/Model-A"]
    short = {"model": "Org/Model-A", "max_tokens": 2, "prompt": "Hello"}
    assert http(port, "/v1/completions", body=short)[0] == 200
    # A prompt longer than the pod's context is refused, as vLLM refuses one beyond max_model_len.
    code, body = http(port, "/v1/completions", body=dict(short, prompt="word " * 400))
    assert code == 400 and "maximum context length is 256 tokens" in body, body
    listed = server.call({"op": "list"})["engines"]
    assert listed["uid-b"] == {"pid": engine["pid"], "port": port}
    assert server.call({"op": "stop", "id": "uid-b"})["stopped"]
    assert server.call({"op": "stop", "id": "uid-b"}) == {"ok": True, "stopped": False}


def test_context_within_the_gguf_and_tgi_settings_from_argv_and_env():
    assert pod_engines.context_length(4096) == 4096
    assert pod_engines.context_length(32768) == pod_engines.GGUF_CONTEXT
    assert pod_engines.context_length(None) == pod_engines.GGUF_CONTEXT
    assert pod_engines.context_length("12") == pod_engines.MIN_CONTEXT
    argv = ["--model-id", "Org/M", "--max-total-tokens=2048", "--port", "8000"]
    assert pod_runner.tgi_serve(argv, {}) == {"model": "Org/M", "names": ["Org/M"], "n_ctx": "2048", "api_key": None}
    env = {"MODEL_ID": "Org/FromEnv", "API_KEY": "k", "MAX_TOTAL_TOKENS": "1024"}
    assert pod_runner.tgi_serve([], env) == {"model": "Org/FromEnv", "names": ["Org/FromEnv"], "n_ctx": "1024",
                                             "api_key": "k"}
    # The flag wins over the variable, as clap reads them.
    assert pod_runner.tgi_serve(["--api-key", "flag"], env)["api_key"] == "flag"


def test_thirty_engines_start_quickly_and_stop(server, tmp_path):
    """A class of 30 engine pods at once (the bench measures their memory: bench/pod_engines.py)."""
    t0 = time.time()
    engines = [start(server, tmp_path, "class-%02d" % i, names=["Org/Model-%02d" % i]) for i in range(30)]
    took = time.time() - t0
    assert len({e["port"] for e in engines}) == 30
    for i, engine in enumerate(engines):
        code, body = http(engine["port"], "/v1/models")
        assert code == 200 and body["data"][0]["id"] == "Org/Model-%02d" % i
    for i in range(30):
        assert server.call({"op": "stop", "id": "class-%02d" % i})["stopped"]
    assert server.call({"op": "list"})["engines"] == {}
    print("30 engines started and answered in %.1f s" % took)
