"""How the sandbox runs a WebUI pod's Open WebUI (tests/cluster/pod_webui.py): names, paths, environment."""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from sandboxlib import REPO

sys.path.insert(0, str(REPO / "tests" / "cluster"))
import pod_webui  # noqa: E402  pylint: disable=wrong-import-position

NS = "wstu001-default"


@pytest.mark.parametrize("host,expected", [
    ("vllm", ("vllm", NS)),
    ("vllm.wcls002-default", ("vllm", "wcls002-default")),
    ("vllm.wcls002-default.svc", ("vllm", "wcls002-default")),
    ("vllm.wcls002-default.svc.cluster.local", ("vllm", "wcls002-default")),
    ("VLLM.wcls002-default.svc.cluster.local.", ("vllm", "wcls002-default")),
    ("huggingface.co", ("huggingface", "co")),  # what the search path makes of it: no such Service
    ("api.openai.com.example", None),
    ("10.96.0.12", None),
])
def test_cluster_dns_names_resolve_with_the_pods_search_path(host, expected):
    assert pod_webui.service_name(host, NS) == expected


def pod(volumes, mounts):
    return {"metadata": {"namespace": NS, "name": "webui-1", "uid": "pod-uid"},
            "spec": {"volumes": volumes, "containers": [{"name": "open-webui", "image": "ghcr.io/open-webui/open-webui:v0.6.18",
                                                         "volumeMounts": mounts}]}}


def test_a_pvc_mount_belongs_to_the_claim_other_volumes_to_the_pod(tmp_path):
    p = pod([{"name": "data", "persistentVolumeClaim": {"claimName": "webui-data"}}, {"name": "tmp", "emptyDir": {}}],
            [{"name": "data", "mountPath": "/app/backend/data"}, {"name": "tmp", "mountPath": "/tmp/x", "subPath": "s"}])
    dirs = pod_webui.volume_dirs(p, pod_webui.is_webui(p), tmp_path, lambda ns, claim: "claim-uid")
    assert dirs == [("/app/backend/data", tmp_path / "volumes" / NS / "webui-data-claim-uid"),
                    ("/tmp/x", tmp_path / "pods" / "pod-uid" / "volumes" / "tmp" / "s")]


def test_a_missing_claim_is_refused(tmp_path):
    p = pod([{"name": "data", "persistentVolumeClaim": {"claimName": "gone"}}], [{"name": "data", "mountPath": "/d"}])
    with pytest.raises(LookupError, match="gone"):
        pod_webui.volume_dirs(p, pod_webui.is_webui(p), tmp_path, lambda ns, claim: None)


def test_container_paths_map_to_the_deepest_mount_else_the_containers_own_layer(tmp_path):
    mounts = [("/app/backend/data", tmp_path / "pvc"), ("/app/backend/data/cache", tmp_path / "cache")]
    rootfs = tmp_path / "rootfs"
    assert pod_webui.host_path("/app/backend/data", mounts, rootfs) == tmp_path / "pvc"
    assert pod_webui.host_path("/app/backend/data/webui.db", mounts, rootfs) == tmp_path / "pvc" / "webui.db"
    assert pod_webui.host_path("/app/backend/data/cache/x", mounts, rootfs) == tmp_path / "cache" / "x"
    assert pod_webui.host_path("/app/backend/database", mounts, rootfs) == rootfs / "app/backend/database"
    assert pod_webui.host_path("/root", mounts, rootfs) == rootfs / "root"


def test_process_env_is_image_then_pod_then_the_sandbox_additions(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    mounts = [("/app/backend/data", tmp_path / "pvc")]
    env = pod_webui.process_env({"DATA_DIR": "/app/backend/data", "OPENAI_API_KEY": "sk-1", "PORT": "9000"},
                                mounts, tmp_path / "rootfs", 4242)
    assert env["DATA_DIR"] == str(tmp_path / "pvc")
    assert env["HF_HOME"] == str(tmp_path / "pvc" / "cache" / "embedding" / "models")  # the image's, on the PVC
    assert env["HOME"] == str(tmp_path / "rootfs" / "root")
    assert env["OPENAI_API_KEY"] == "sk-1" and env["PORT"] == "9000"  # the pod's env wins over the image's
    assert env["ENV"] == "prod" and env["WEBUI_SECRET_KEY"] == ""
    assert env["OFFLINE_MODE"] == "true" and env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:4242"
    assert "HTTPS_PROXY" not in env


def serve_once(response):
    """A one-shot HTTP server on 127.0.0.1: returns (port, list of the requests it got)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    got = []

    def run():
        conn, _addr = sock.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        got.append(data.decode())
        conn.sendall(response)
        conn.close()
        sock.close()

    threading.Thread(target=run, daemon=True).start()
    return sock.getsockname()[1], got


def proxy_request(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        out = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return out.decode()
            out += data


def test_the_pod_network_proxy_sends_a_cluster_name_to_its_pod_and_refuses_the_rest():
    upstream, got = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    asked = []

    def resolve(namespace, host, port):
        asked.append((namespace, host, port))
        return upstream if host == "vllm" else (None, "no such Service")

    net = pod_webui.PodNetwork(NS, resolve)
    try:
        out = proxy_request(net.port, b"GET http://vllm:8000/v1/models HTTP/1.1\r\nHost: vllm:8000\r\n"
                                      b"Proxy-Connection: keep-alive\r\nAuthorization: Bearer k\r\n\r\n")
        assert out.startswith("HTTP/1.1 200") and out.endswith("ok")
        assert got[0].startswith("GET /v1/models HTTP/1.1\r\n")
        assert "Authorization: Bearer k" in got[0] and "Proxy-" not in got[0] and "Connection: close" in got[0]
        assert asked == [(NS, "vllm", 8000)]
        refused = proxy_request(net.port, b"GET http://huggingface.co/api HTTP/1.1\r\nHost: huggingface.co\r\n\r\n")
        assert refused.startswith("HTTP/1.1 502") and "no such Service" in refused
        tls = proxy_request(net.port, b"CONNECT huggingface.co:443 HTTP/1.1\r\nHost: huggingface.co:443\r\n\r\n")
        assert tls.startswith("HTTP/1.1 403")
    finally:
        net.close()


def test_webui_images_are_recognised():
    assert pod_webui.IMAGE.match("ghcr.io/open-webui/open-webui:v0.6.18")
    assert pod_webui.IMAGE.match("ghcr.io/open-webui/open-webui@sha256:abc")
    assert not pod_webui.IMAGE.match("ghcr.io/open-webui/open-webui-fork:v1")


def test_without_a_secret_key_the_start_script_generates_one_in_the_containers_layer(tmp_path):
    first = pod_webui.start_script_env({"WEBUI_SECRET_KEY": ""}, tmp_path / "a")
    assert first["WEBUI_SECRET_KEY"] and (tmp_path / "a" / ".webui_secret_key").read_text() == first["WEBUI_SECRET_KEY"]
    assert pod_webui.start_script_env({}, tmp_path / "a")["WEBUI_SECRET_KEY"] == first["WEBUI_SECRET_KEY"]
    # A new pod is a new layer: another key, so the old logins are invalid.
    assert pod_webui.start_script_env({}, tmp_path / "b")["WEBUI_SECRET_KEY"] != first["WEBUI_SECRET_KEY"]
    given = pod_webui.start_script_env({"WEBUI_SECRET_KEY": "from-the-secret"}, tmp_path / "c")
    assert given["WEBUI_SECRET_KEY"] == "from-the-secret" and not (tmp_path / "c").exists()
