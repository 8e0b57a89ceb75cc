"""The real ``llama-server`` for every llama.cpp pod of the sandbox (a test double around a real
program: sandbox only, never part of the collection).

kwok runs no container. For a pod of ggml-org's llama.cpp server image, pod_runner.py starts the
llama-server binary that hack/llama-server.sh builds from the llama.cpp source the pinned
llama-cpp-python vendors (the same llama.cpp the image's build carries, on the CPU), with the pod's
own argv and the environment a kubelet would give the container (kubelet_env.py). So llama-server's
own parser reads every flag and every ``LLAMA_ARG_*`` variable, its own API-key check
(``LLAMA_API_KEY``) guards ``/v1``, and its ``/health`` and ``/metrics`` answer. A flag it does not
know makes it exit with its own message, and the pod crash-loops with that message, as on a node.

What the sandbox changes in the argv, and why (``sandbox_argv``):

- ``--hf-repo user/model[:quant]`` (and ``--hf-file``) of a repository in models.txt becomes
  ``--model <the SmolLM2-135M-Instruct GGUF of the sandbox>``: there is no internet to download from;
  every GGUF type of such a repository is served by the same Q4_1 file. Other repositories get no
  process (pod_runner.py lets the shared engine answer, which does not list the model, as for vLLM).
- ``--host 0.0.0.0 --port 8000`` become ``--host 127.0.0.1 --port <free port>``: the pods share one
  network here, and pod_runner.py points the pod's port-forward and Service at that port.
- ``--threads 1`` is added at the front (2 cores for a whole class); a ``--threads`` of the pod wins.

GPU flags (``--gpu-layers``, ``--split-mode``, ``--tensor-split``, ``--flash-attn``) are parsed by
llama-server and have no GPU to act on: the binary is a CPU build (the split itself is not shown).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import cri_log

REPO_FLAGS = ("-hf", "-hfr", "--hf-repo")
FILE_FLAGS = ("-hff", "--hf-file")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hf_repo(argv, env):
    """The ``user/model`` of the pod's ``--hf-repo`` (or ``LLAMA_ARG_HF_REPO``), without ``:quant``."""
    value = env.get("LLAMA_ARG_HF_REPO")
    for i, arg in enumerate(argv):
        name, sep, inline = arg.partition("=")
        if name in REPO_FLAGS:
            value = inline if sep else (argv[i + 1] if i + 1 < len(argv) else None)
    return (value or "").partition(":")[0] or None


def sandbox_argv(argv, gguf, port):
    """The pod's argv with the model, host and port of this sandbox (see the module's docstring)."""
    out, i = ["--threads", "1"], 0
    while i < len(argv):
        arg = argv[i]
        name, sep, _inline = arg.partition("=")
        takes = 0 if sep else 1
        if name in REPO_FLAGS:
            out += ["--model", gguf]
        elif name in FILE_FLAGS:
            pass
        elif name == "--host":
            out += ["--host", "127.0.0.1"]
        elif name == "--port":
            out += ["--port", str(port)]
        else:
            out.append(arg)
            takes = 0
        i += 1 + takes
    if "--port" not in out:
        out += ["--host", "127.0.0.1", "--port", str(port)]
    return out


def health(port, timeout=2):
    """The status of llama-server's ``/health`` (200 once the model is loaded, 503 while loading), or None."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open("http://127.0.0.1:%d/health" % port, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Server:
    """One pod's llama-server process; its output goes to the pod's log in the CRI format."""

    def __init__(self, binary, argv, env, gguf, log):
        self.port = free_port()
        self.argv = [binary] + sandbox_argv(argv, gguf, self.port)
        self.log = log
        self.output = []
        self.proc = subprocess.Popen(self.argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        with open(self.log, "a", encoding="utf-8") as out:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.output.append(line)
                out.write(cri_log.cri_line(line, "stderr"))
                out.flush()

    def wait_ready(self, timeout):
        """``(True, None)`` once /health says 200; ``(False, output)`` if the process exits first (its
        own error message in the output), ``(False, None)`` after ``timeout`` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.pump.join(5)
                return False, "\n".join(self.output)
            if health(self.port) == 200:
                return True, None
            time.sleep(0.1)
        return False, None

    def stop(self):
        """TERM, KILL after 5 s (the kubelet's grace, shortened)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
            except ProcessLookupError:
                pass


class Servers:
    """The llama-server processes of the sandbox, by pod uid."""

    def __init__(self, binary, gguf):
        self.binary = binary
        self.gguf = gguf
        self.lock = threading.Lock()
        self.servers = {}

    def start(self, key, argv, env, log):
        self.remove(key)
        server = Server(self.binary, argv, env, self.gguf, log)
        with self.lock:
            self.servers[key] = server
        return server

    def get(self, key):
        with self.lock:
            return self.servers.get(key)

    def remove(self, key):
        with self.lock:
            server = self.servers.pop(key, None)
        if server:
            server.stop()
        return server is not None

    def stop_all(self):
        for key in list(self.servers):
            self.remove(key)
