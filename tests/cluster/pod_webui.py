"""The real Open WebUI for every WebUI pod of the sandbox (sandbox only, never part of the collection).

kwok runs no container. pod_runner.py gives every WebUI pod (an ``ghcr.io/open-webui/open-webui`` image)
the real program instead: Open WebUI 0.6.18 from PyPI (the role's pinned image version, the venv of
``hack/sandbox-venv.sh webui``), started as ``open-webui serve`` with the container's environment as a
kubelet and the image would give it:

- the image's own ``ENV`` lines (``IMAGE_ENV``), then the pod's env as the kubelet computes it
  (kubelet_env.py: Secrets resolved, Service links unless disabled, ``HOSTNAME``, ``KUBERNETES_*``);
- container paths as the container would see them: a path under a volume mount is that volume's host
  directory (a PVC's directory lives as long as the PVC, ``<run>/volumes/<ns>/<claim>-<uid>``), any other
  path is in the container's own writable layer (``<run>/pods/<uid>/rootfs``, gone with the pod);
- the sandbox's only additions (``SANDBOX_ENV`` and ``HTTP_PROXY``): offline mode (no embedding,
  reranking or whisper model download), and the pod network: an HTTP proxy per pod that resolves the
  pod's cluster DNS names (``vllm``, ``vllm.<ns>``, ``vllm.<ns>.svc.cluster.local``) to the Service's ready
  pods, as kube-proxy and the cluster DNS would (pod_runner.py ``Runner.resolve``).

Memory: one Open WebUI takes about 1.3 GB, and a class has 30 WebUI pods. So the program starts on the
first connection to the pod's port (through ``kubectl port-forward``, a kwok ``PortForward`` object
named after the pod), at most ``MAX_RUNNING`` run at once (the one idle longest stops first), and one
idle for ``IDLE_SECONDS`` stops; its data stays on the PVC, so the next connection finds it again.
The pod's ``kubectl logs`` is the program's output (a kwok ``Logs`` object).

What it cannot show: the image's own start script (``start.sh``: it runs the same uvicorn app; its one
other step, a generated key when WEBUI_SECRET_KEY is empty, is ``start_script_env``),
anything of the image's file system beyond ``IMAGE_ENV``, and the kubelet's probes (a WebUI pod's
readiness is kwok's; the program's own ``/health`` is checked on its first start).
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import posixpath
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cri_log  # noqa: E402  pylint: disable=wrong-import-position

IMAGE = re.compile(r"^ghcr\.io/open-webui/open-webui(:|@|$)")
# The ENV lines of Open WebUI's Dockerfile that apply to the image the role pins (v0.6.18, CPU build).
IMAGE_ENV = {
    "ENV": "prod", "PORT": "8080",
    "OLLAMA_BASE_URL": "/ollama", "OPENAI_API_BASE_URL": "", "OPENAI_API_KEY": "", "WEBUI_SECRET_KEY": "",
    "SCARF_NO_ANALYTICS": "true", "DO_NOT_TRACK": "true", "ANONYMIZED_TELEMETRY": "false",
    "WHISPER_MODEL": "base", "WHISPER_MODEL_DIR": "/app/backend/data/cache/whisper/models",
    "RAG_EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
    "SENTENCE_TRANSFORMERS_HOME": "/app/backend/data/cache/embedding/models",
    "HF_HOME": "/app/backend/data/cache/embedding/models",
    "HOME": "/root",
}
WORKDIR = "/app/backend"  # the image's WORKDIR
# Variables whose value is a path in the container (translated to the host directory behind it).
PATH_VARS = ("DATA_DIR", "HOME", "HF_HOME", "SENTENCE_TRANSFORMERS_HOME", "WHISPER_MODEL_DIR")
# The sandbox's only additions: no model downloads (Open WebUI's offline mode sets HF_HUB_OFFLINE and
# turns off the auto-update of the embedding, reranking and whisper models).
SANDBOX_ENV = {"OFFLINE_MODE": "true"}
MAX_RUNNING = int(os.environ.get("SANDBOX_WEBUI_MAX_RUNNING", "2"))
IDLE_SECONDS = int(os.environ.get("SANDBOX_WEBUI_IDLE_SECONDS", "300"))
START_TIMEOUT = 300


def is_webui(pod):
    """The container of ``pod`` that runs Open WebUI's image, or None."""
    for container in pod["spec"].get("containers") or []:
        if IMAGE.match(container.get("image") or ""):
            return container
    return None


def volume_dirs(pod, container, run, pvc_uid):
    """[(mountPath, host directory)] of the container's volume mounts. ``pvc_uid(namespace, claim)`` gives a
    claim's uid (None: no such claim): a PVC's directory belongs to that claim, any other volume's to the pod."""
    meta = pod["metadata"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    out = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            uid = pvc_uid(meta["namespace"], claim)
            if uid is None:
                raise LookupError("persistentvolumeclaim %r not found" % claim)
            base = pathlib.Path(run, "volumes", meta["namespace"], "%s-%s" % (claim, uid))
        else:
            base = pathlib.Path(run, "pods", meta["uid"], "volumes", mount["name"])
        out.append((posixpath.normpath(mount["mountPath"]), base / (mount.get("subPath") or "")))
    return out


def host_path(path, mounts, rootfs):
    """The host directory behind the container path ``path``: the deepest volume mount it is under, else
    the container's own layer ``rootfs``."""
    path = posixpath.normpath(path)
    best = None
    for mount_path, host in mounts:
        if path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
            if best is None or len(mount_path) > len(best[0]):
                best = (mount_path, host)
    if best:
        rest = posixpath.relpath(path, best[0])
        return pathlib.Path(best[1]) / ("" if rest == "." else rest)
    return pathlib.Path(rootfs) / path.lstrip("/")


def process_env(kubelet_env, mounts, rootfs, proxy_port):
    """The Open WebUI process's environment: the image's ENV, the pod's (kubelet) env over it, container
    paths on the host, plus the sandbox's additions (offline mode, the pod network's proxy)."""
    env = dict(IMAGE_ENV)
    env.update(kubelet_env)
    for name in PATH_VARS:
        if env.get(name, "").startswith("/"):
            env[name] = str(host_path(env[name], mounts, rootfs))
    env.update(SANDBOX_ENV)
    proxy = "http://127.0.0.1:%d" % proxy_port
    env.update({"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONUNBUFFERED": "1"})
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    return env


def start_script_env(env, workdir):
    """What the image's start.sh does before it starts the app: with neither WEBUI_SECRET_KEY nor
    WEBUI_JWT_SECRET_KEY set, it generates a key once into ``.webui_secret_key`` of its directory (the
    container's own layer: a new pod gets a new key, and every login is lost) and uses that."""
    env = dict(env)
    if not env.get("WEBUI_SECRET_KEY") and not env.get("WEBUI_JWT_SECRET_KEY"):
        key_file = pathlib.Path(workdir, ".webui_secret_key")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(9)[:12])
        env["WEBUI_SECRET_KEY"] = key_file.read_text()
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pipe(src, dst):
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s write side."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def splice(client, upstream):
    """Both directions between ``client`` and ``upstream``, then closes both (when the upstream ends the
    connection, the client's ends with it); a client that only half-closes still gets the whole answer."""
    forth = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
    forth.start()
    pipe(upstream, client)
    for sock in (client, upstream):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
    forth.join(5)


def copy(src, dst):
    """Copy ``src`` to ``dst`` until ``src`` ends or fails."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                return
            dst.sendall(data)
    except OSError:
        pass


def relay(client, dial):
    """A port-forward connection to the program, dialled (``dial()``) when the client first sends. Unlike
    ``splice``, a connection the program closed while idle (uvicorn ends a keep-alive connection after
    5 s) is dialled again for the client's next request: kwok 0.8's port-forward never ends its stream
    when the target closes (a reused browser connection would hang for good), where a kubelet's ends."""
    upstream = back = None
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            if back is None or not back.is_alive():
                if upstream is not None:
                    upstream.close()
                upstream = dial()
                back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
                back.start()
            upstream.sendall(data)
    except OSError:
        pass
    finally:
        if upstream is not None:
            try:
                upstream.shutdown(socket.SHUT_WR)  # the client is done sending; its answer may still come
            except OSError:
                pass
            back.join(60)
            upstream.close()
        client.close()


class WebUI:
    """One WebUI pod: the listener that stands for its container port, and the program when it runs."""

    def __init__(self, owner, key, pod_name, env, cwd, log):
        self.owner, self.key, self.pod_name = owner, key, pod_name
        self.env, self.cwd, self.log = env, pathlib.Path(cwd), pathlib.Path(log)
        self.proc = None
        self.port = None
        self.active = 0
        self.last = time.time()
        self.starts = []  # seconds to the first /health answer, per start
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listen_port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _accept(self):
        while not self.closed:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        with self.lock:
            self.active += 1
        try:
            relay(conn, self._dial)
        finally:
            with self.lock:
                self.active -= 1
                self.last = time.time()

    def _dial(self):
        """A connection to the program, started first if it does not run."""
        try:
            port = self.ensure_running()
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except (OSError, RuntimeError) as exc:
            self._say("sandbox: connection refused: %s" % exc)
            raise OSError(str(exc)) from exc
        upstream.settimeout(None)
        return upstream

    def _say(self, line):
        with open(self.log, "a", encoding="utf-8") as out:
            out.write(cri_log.cri_line(line, "stderr"))

    def ensure_running(self):
        """The program's port, after starting it (and waiting for its /health) if it does not run. One
        program starts at a time (``WebUIs.start_lock``); connections that come meanwhile wait for it."""
        with self.owner.start_lock:
            with self.lock:
                if self.running():
                    self.last = time.time()
                    return self.port
                if self.closed:
                    raise RuntimeError("the pod is gone")
            self.owner.make_room(self)
            with self.lock:
                self.port = free_port()
                # The directories the image has (its WORKDIR, HOME and data directory).
                for path in [self.cwd] + [self.env[n] for n in ("DATA_DIR", "HOME") if self.env.get(n, "").startswith("/")]:
                    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
                t0 = time.time()
                # pylint: disable-next=consider-using-with  # it runs until stop()
                self.proc = subprocess.Popen(
                    [self.owner.program, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                    env=start_script_env(self.env, self.cwd), cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True)
                proc = self.proc
            threading.Thread(target=self._pump, args=(proc,), daemon=True).start()
            seconds = self._wait_health(proc, t0)
            self.starts.append(seconds)
            self.last = time.time()
            self.owner.record(self, proc, seconds)
            return self.port

    def _wait_health(self, proc, t0):
        while time.time() - t0 < START_TIMEOUT:
            if proc.poll() is not None:
                raise RuntimeError("Open WebUI exited with status %s (see the pod's log)" % proc.returncode)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return round(time.time() - t0, 2)
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("Open WebUI did not answer /health within %d s" % START_TIMEOUT)

    def _pump(self, proc):
        with open(self.log, "a", encoding="utf-8") as out:
            for raw in proc.stdout:
                out.write(cri_log.cri_line(raw.decode("utf-8", "replace").rstrip("\n")))
                out.flush()

    def idle_for(self):
        """Seconds without a connection (0 while one is open)."""
        return 0 if self.active else time.time() - self.last

    def stop(self):
        with self.lock:
            self._stop_locked()

    def _stop_locked(self):
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def close(self):
        self.closed = True
        self.listener.close()
        self.stop()


class WebUIs:
    """Every WebUI pod's listener and program (``MAX_RUNNING`` at most run, idle ones stop)."""

    def __init__(self, program, results):
        self.program = program
        self.results = pathlib.Path(results)
        self.pods = {}  # pod uid -> WebUI
        self.lock = threading.Lock()
        self.start_lock = threading.Lock()
        threading.Thread(target=self._reap_idle, daemon=True).start()

    def add(self, key, pod_name, env, cwd, log):
        with self.lock:
            if key not in self.pods:
                self.pods[key] = WebUI(self, key, pod_name, env, cwd, log)
            return self.pods[key]

    def get(self, key):
        with self.lock:
            return self.pods.get(key)

    def remove(self, key):
        with self.lock:
            webui = self.pods.pop(key, None)
        if webui:
            webui.close()
        return webui is not None

    def make_room(self, starting):
        """Before ``starting`` starts: stop the idle programs beyond MAX_RUNNING - 1, longest idle first."""
        with self.lock:
            others = [w for w in self.pods.values() if w is not starting and w.running()]
        others.sort(key=lambda w: -w.idle_for())
        for webui in others[:max(0, len(others) - MAX_RUNNING + 1)]:
            if webui.idle_for() > 0:
                webui.stop()

    def _reap_idle(self):
        while True:
            time.sleep(5)
            with self.lock:
                webuis = list(self.pods.values())
            for webui in webuis:
                if webui.running() and webui.idle_for() > IDLE_SECONDS:
                    webui.stop()

    def record(self, webui, proc, seconds):
        entry = {"pod": webui.pod_name, "seconds": seconds, "start": len(webui.starts), "pid": proc.pid,
                 "rss_kib": rss_kib(proc.pid), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with self.lock, open(self.results, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def stop_all(self):
        with self.lock:
            webuis, self.pods = list(self.pods.values()), {}
        for webui in webuis:
            webui.close()


def rss_kib(pid):
    """The resident memory of ``pid`` and its children, in KiB (0 if gone)."""
    total = 0
    try:
        out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True,
                             text=True, check=False).stdout
        total = sum(int(v) for v in out.split())
    except (OSError, ValueError):
        pass
    return total


def service_name(host, namespace):
    """(service, namespace) that the cluster DNS name ``host`` names, seen from a pod in ``namespace``
    (its search path: <ns>.svc.cluster.local, svc.cluster.local, cluster.local), or None."""
    parts = host.rstrip(".").lower().split(".")
    if parts[-2:] == ["cluster", "local"]:
        parts = parts[:-2]
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return parts[0], parts[1]
    return None


class PodNetwork:
    """An HTTP proxy for one pod: a request for http://<cluster DNS name>:<port>/... goes to the Service's
    ready pod, as ``resolve(namespace, host, port) -> local port or (None, reason)`` finds it. Anything
    else (HTTPS, hosts outside the cluster) is refused at once: the sandbox has no internet."""

    def __init__(self, namespace, resolve):
        self.namespace, self.resolve = namespace, resolve
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _refuse(conn, code, reason):
        body = (reason + "\n").encode()
        conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % (code, b"Bad Gateway" if code == 502 else b"Forbidden", len(body)) + body)
        conn.close()

    def _handle(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                conn.close()
                return
            head += data
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        match = re.match(r"^http://([^/:]+)(?::(\d+))?(/.*)?$", target)
        if method == "CONNECT" or not match:
            self._refuse(conn, 403, "sandbox pod network: only plain HTTP to cluster names (no %s %s)" % (method, target))
            return
        host, port, path = match.group(1), int(match.group(2) or 80), match.group(3) or "/"
        local = self.resolve(self.namespace, host, port)
        if not isinstance(local, int):
            self._refuse(conn, 502, "sandbox pod network: %s:%d: %s" % (host, port, local[1]))
            return
        headers = [line for line in lines[1:] if not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))]
        request = "\r\n".join(["%s %s %s" % (method, path, version)] + headers + ["Connection: close", "", ""])
        try:
            upstream = socket.create_connection(("127.0.0.1", local), timeout=10)
            upstream.settimeout(None)
        except OSError as exc:
            self._refuse(conn, 502, "sandbox pod network: %s:%d: %s" % (host, port, exc))
            return
        upstream.sendall(request.encode("latin-1") + rest)
        splice(conn, upstream)

    def close(self):
        self.listener.close()
