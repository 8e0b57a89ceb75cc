# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bookkeeping of access.yml's port-forwards, in one place (``llm_access``).

A namespace's forwards are recorded in ``<state_dir>/<namespace>.json`` (mode 0600): for each,
its name (api, webui), the Service, the remote and local port, the URL path, the kubectl PID and
its log file. A recorded PID counts as ours only while it still is ``kubectl ... port-forward`` for
this namespace (``ps`` says so), so a PID reused by another program is never signalled. Pure,
except for ``ps``, ``start``, ``stop`` and the file helpers at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def state_file(state_dir, namespace):
    return os.path.join(os.path.expanduser(state_dir), "%s.json" % namespace)


def log_file(state_dir, namespace, name):
    return os.path.join(os.path.expanduser(state_dir), "%s-%s.log" % (namespace, name))


def parse_ps(text):
    """``ps -o pid=,args=`` output -> {pid: args}."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.strip().split(" ", 1)
        if parts and parts[0].isdigit():
            out[int(parts[0])] = parts[1] if len(parts) > 1 else ""
    return out


def running(recorded, procs, namespace):
    """The recorded forwards whose PID still is a kubectl port-forward for ``namespace``."""
    mine = set(pid for pid, args in procs.items()
               if "port-forward" in args and re.search(r" %s( |$)" % re.escape(namespace), args))
    return [f for f in recorded if f.get("pid") in mine]


def by_component(services):
    """component -> the first Service of it (by name)."""
    out = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        comp = ((svc.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")
        if comp and comp not in out:
            out[comp] = svc
    return out


def wanted(services, api_port, webui_port, webui=True):
    """The forwards to have: the engine Service's port 8000 (else its first) to ``api_port``, and the
    WebUI Service's first port to ``webui_port`` (when ``webui``)."""
    comps = by_component(services)
    out = []
    if "engine" in comps:
        ports = comps["engine"]["spec"].get("ports") or []
        port = ([p for p in ports if p.get("port") == 8000] or ports)[0]["port"]
        out.append({"name": "api", "service": comps["engine"]["metadata"]["name"], "remote_port": port,
                    "local_port": int(api_port), "path": "/v1"})
    if webui and "webui" in comps:
        out.append({"name": "webui", "service": comps["webui"]["metadata"]["name"],
                    "remote_port": comps["webui"]["spec"]["ports"][0]["port"], "local_port": int(webui_port), "path": "/"})
    return out


def keep(want, alive, answering):
    """Of the running forwards, those that match a wanted one and still get an answer (a forward
    whose pod was replaced lives on, but every connection through it fails)."""
    out = []
    for w in want:
        for r in alive:
            if (r["name"] == w["name"] and r["service"] == w["service"] and r["pid"] in answering
                    and r["remote_port"] == w["remote_port"] and (w["local_port"] == 0 or r["local_port"] == w["local_port"])):
                out.append(r)
    return out


def kubectl_argv(kubectl, namespace, forward, kubeconfig=None, context=None):
    local = str(forward["local_port"]) if forward["local_port"] else ""
    return ([kubectl] + (["--kubeconfig", os.path.expanduser(kubeconfig)] if kubeconfig else [])
            + (["--context", context] if context else [])
            + ["-n", namespace, "port-forward", "--address", "127.0.0.1", "svc/%s" % forward["service"],
               "%s:%s" % (local, forward["remote_port"])])


def record(forward, pid, local_port, log):
    return dict(forward, pid=pid, local_port=local_port, url="http://127.0.0.1:%d%s" % (local_port, forward["path"]), log=log)


def lines(namespace, forwards, models):
    """``models``: the model ids, or None when the API wants its key."""
    out = ["Namespace %s:" % namespace]
    out += ["  %s: %s (pid %s)" % (f["name"], f["url"], f["pid"]) for f in forwards]
    out.append("  models: %s" % (", ".join(models) if models is not None
                                 else "the API needs its API key (Authorization: Bearer ...)"))
    return out


# --- Processes and files ------------------------------------------------------------------------

def ps(pids):
    if not pids:
        return {}
    proc = subprocess.run(["ps", "-o", "pid=,args=", "-p", ",".join(str(p) for p in pids)],
                          capture_output=True, text=True, check=False)
    return parse_ps(proc.stdout)


def port_in_use(port):
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def stop(forwards, timeout=10.0):
    """Stop the recorded port-forwards (SIGTERM, SIGKILL after half of ``timeout``) and wait until
    their local ports are free again, so that a forward started next on the same port finds it free."""
    for f in forwards:
        _signal(f["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        busy = [f for f in forwards if f.get("local_port") and port_in_use(f["local_port"])]
        if not busy or time.monotonic() >= deadline:
            return [f["local_port"] for f in busy]
        if not killed and time.monotonic() >= deadline - timeout / 2:
            for f in busy:
                _signal(f["pid"], signal.SIGKILL)
            killed = True
        time.sleep(0.1)


def _signal(pid, sig):
    try:
        os.kill(int(pid), sig)
    except ProcessLookupError:
        pass


class StartError(Exception):
    pass


def start(argv, log, timeout):
    """Start ``argv`` (kubectl port-forward) in its own session, detached from this process, and
    wait until it listens. Returns ``(pid, local_port)``."""
    old = os.umask(0o077)
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, close_fds=True)
    finally:
        os.umask(old)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log) as f:
            text = f.read()
        match = FORWARDING.search(text)
        if match:
            return proc.pid, int(match.group(1))
        if proc.poll() is not None:
            raise StartError("kubectl port-forward exited: %s" % text.strip()[-1000:])
        time.sleep(0.2)
    proc.terminate()
    with open(log) as f:
        raise StartError("kubectl port-forward did not listen within %ss: %s" % (timeout, f.read().strip()[-1000:]))


def read_state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_state(path, data):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=4, sort_keys=True) + "\n")
    os.replace(tmp, path)
