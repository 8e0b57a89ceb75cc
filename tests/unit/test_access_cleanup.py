"""The bookkeeping of access.yml (plugins/module_utils/_access.py) and the plan of cleanup.yml
(plugins/module_utils/_cleanup.py)."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _access, _cleanup


def svc(name, component, ports):
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
            "spec": {"ports": [{"port": p} for p in ports]}}


def test_ps_output_and_which_recorded_pids_are_still_ours():
    procs = _access.parse_ps(" 101 kubectl -n ns-a port-forward svc/vllm 8000:8000\n"
                             "202 /usr/bin/python something\n"
                             "303 kubectl -n ns-b port-forward svc/vllm 8001:8000\n")
    assert procs[101].startswith("kubectl") and set(procs) == {101, 202, 303}
    recorded = [{"name": "api", "pid": 101}, {"name": "webui", "pid": 202}, {"name": "x", "pid": 303}]
    assert _access.running(recorded, procs, "ns-a") == [{"name": "api", "pid": 101}]


def test_wanted_forwards_prefer_port_8000_and_skip_the_webui_when_asked():
    services = [svc("webui", "webui", [3000]), svc("vllm", "engine", [9090, 8000]), svc("zzz", "engine", [8000])]
    want = _access.wanted(services, 8001, 0)
    assert want == [{"name": "api", "service": "vllm", "remote_port": 8000, "local_port": 8001, "path": "/v1"},
                    {"name": "webui", "service": "webui", "remote_port": 3000, "local_port": 0, "path": "/"}]
    assert [w["name"] for w in _access.wanted(services, 8000, 3000, webui=False)] == ["api"]
    assert _access.wanted([svc("webui", "webui", [3000])], 8000, 3000)[0]["name"] == "webui"


def test_keep_only_forwards_that_match_and_answer():
    want = [{"name": "api", "service": "vllm", "remote_port": 8000, "local_port": 0, "path": "/v1"}]
    alive = [{"name": "api", "service": "vllm", "remote_port": 8000, "local_port": 40000, "pid": 7}]
    assert _access.keep(want, alive, [7]) == alive
    assert _access.keep(want, alive, []) == []  # its pod was replaced: no answer
    assert _access.keep([dict(want[0], local_port=8000)], alive, [7]) == []  # another port asked for
    assert _access.keep([dict(want[0], service="tgi")], alive, [7]) == []


def test_kubectl_argv_and_record():
    fwd = {"name": "api", "service": "vllm", "remote_port": 8000, "local_port": 0, "path": "/v1"}
    assert _access.kubectl_argv("/bin/kubectl", "ns", fwd, "~/kc", "ctx") == [
        "/bin/kubectl", "--kubeconfig", os.path.expanduser("~/kc"), "--context", "ctx", "-n", "ns", "port-forward",
        "--address", "127.0.0.1", "svc/vllm", ":8000"]
    rec = _access.record(fwd, 42, 40001, "/tmp/log")
    assert rec["url"] == "http://127.0.0.1:40001/v1" and rec["pid"] == 42 and rec["local_port"] == 40001
    text = _access.lines("ns", [rec], None)
    assert text == ["Namespace ns:", "  api: http://127.0.0.1:40001/v1 (pid 42)",
                    "  models: the API needs its API key (Authorization: Bearer ...)"]


def test_state_file_is_private(tmp_path):
    path = _access.state_file(str(tmp_path / "access"), "ns")
    _access.write_state(path, {"forwards": []})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert _access.read_state(path) == {"forwards": []} and _access.read_state(path + ".missing") is None


def test_start_reports_a_program_that_exits(tmp_path):
    with pytest.raises(_access.StartError, match="exited: no such service"):
        _access.start(["sh", "-c", "echo no such service; exit 1"], str(tmp_path / "log"), 5)
    pid, port = _access.start(["sh", "-c", "echo Forwarding from 127.0.0.1:45678 -\\> 8000; sleep 5"],
                              str(tmp_path / "log2"), 5)
    assert port == 45678 and pid > 0
    os.kill(pid, 15)


LINGER = """
import signal, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen()
signal.signal(signal.SIGTERM, lambda *a: (time.sleep(%s), sys.exit(0)))
print("Forwarding from 127.0.0.1:%%d -> 8000" %% s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("linger", [1, 60])
def test_stop_returns_once_the_port_is_free(tmp_path, linger):
    """A forward that takes its time after SIGTERM (1 s), or ignores it (60 s: SIGKILL), has freed
    its port when stop returns, so access.yml can start the new forward on the same port."""
    import sys
    pid, port = _access.start([sys.executable, "-c", LINGER % linger], str(tmp_path / "log"), 10)
    assert _access.port_in_use(port)
    assert _access.stop([{"pid": pid, "local_port": port}], timeout=6) == []
    assert not _access.port_in_use(port)


def obj(name, owners=None, deleting=False):
    meta = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return {"metadata": meta}


FOUND = [("apps/v1", "Deployment", [obj("vllm")]),
         ("v1", "Pod", [obj("vllm-abc", owners=[{"kind": "ReplicaSet"}]), obj("bare", deleting=True)]),
         ("v1", "Secret", [obj("webui-secret-key"), obj("vllm-api-key")]),
         ("v1", "PersistentVolumeClaim", [obj("vllm-cache")])]


def test_cleanup_keeps_data_unless_purge_and_goes_workloads_first():
    plan = _cleanup.plan("ns", FOUND, purge=False, keep_secrets=["webui-secret-key"])
    assert [o["name"] for o in plan["remove"]] == ["vllm", "bare", "vllm-api-key"]
    assert plan["remove"][1]["terminating"] is True
    assert plan["kept_names"] == "Secret/webui-secret-key, PersistentVolumeClaim/vllm-cache"
    assert plan["definitions"][0] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "metadata": {"name": "vllm", "namespace": "ns"}}
    assert plan["line"] == "ns: Deployment/vllm, Pod/bare, Secret/vllm-api-key"
    purge = _cleanup.plan("ns", FOUND, purge=True, keep_secrets=["webui-secret-key"])
    assert purge["kept"] == [] and purge["kept_names"] == "-" and len(purge["remove"]) == 5
    assert _cleanup.plan("ns", [], False)["line"] == "ns: nothing"


@pytest.mark.parametrize("value,expected", [(True, True), ("yes", True), ("1", True), (False, False), ("no", False),
                                            ("0", False), ("maybe", None), ("sure", None)])
def test_flags(value, expected):
    assert _cleanup.flag(value) is expected


def test_flag_problems_name_the_flag():
    assert _cleanup.flag_problems({"confirm": "maybe", "purge": False}) == ["confirm=maybe"]
