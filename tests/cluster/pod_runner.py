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

Every verdict is appended to ``<run>/vllm-checks.jsonl`` (the test session reports the counts).
What it cannot show: anything that needs a GPU (CUDA, NCCL, loading the weights), and programs other
than vLLM (TGI and Open WebUI pods are not checked). The engine that answers for every pod is still
the one shared llama.cpp server of the sandbox (tests/cluster/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cri_log  # noqa: E402  pylint: disable=wrong-import-position
import kubelet_env  # noqa: E402  pylint: disable=wrong-import-position

ANNOTATION = "sandbox.haw-icc.de/engine"
# vLLM's image (the roles' default and any tag of it); the image of kwok's unpullable fault does not match.
VLLM_IMAGE = re.compile(r"^(docker\.io/)?vllm/vllm-openai(:|@|$)")
# Test fixtures that use vLLM's image but stand for a crashed engine (manifests/kwok-debugging.yaml.tmpl).
FIXTURE_CONTAINERS = ("engine-crash-fixture",)
BACKOFF_START, BACKOFF_MAX = 10, 300  # the kubelet's crash-loop back-off, in seconds


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def vllm_container(pod):
    """The first container of ``pod`` that runs vLLM's image, or None."""
    for container in pod["spec"].get("containers") or []:
        if VLLM_IMAGE.match(container.get("image") or ""):
            return container
    return None


def needs_check(pod):
    """True for a live vLLM pod bound to a node (a kubelet sees no other) that has no verdict yet."""
    meta = pod["metadata"]
    if meta.get("deletionTimestamp") or (meta.get("annotations") or {}).get(ANNOTATION):
        return False
    return bool(pod["spec"].get("nodeName")) and vllm_container(pod) is not None


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


class CheckServer:
    """vllm_startup_check.py --serve, one check at a time."""

    def __init__(self, python, script):
        self.proc = subprocess.Popen([python, script, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lock = threading.Lock()
        ready = self.proc.stdout.readline()
        if not ready.startswith("{"):
            raise RuntimeError("the vLLM check server did not start (exit status %s)" % self.proc.poll())

    def check(self, argv, env):
        with self.lock:
            self.proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the vLLM check server stopped (exit status %s)" % self.proc.poll())
        return json.loads(line)


class Runner:
    def __init__(self, api, run_dir, server):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.run = pathlib.Path(run_dir)
        self.server = server
        self.results = self.run / "vllm-checks.jsonl"
        (self.run / "pod-logs").mkdir(parents=True, exist_ok=True)
        self.crashing = {}  # uid -> (namespace, name), the pods in crash-loop back-off
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
        container = vllm_container(pod)
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
        verdict = self.server.check(list(container.get("args") or []), env)
        self.record(pod, verdict)
        if verdict["ok"]:
            self.annotate(pod, "ready")
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
                self.environment(current, vllm_container(current))
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
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"logs": [{"containers": [container["name"]], "logsFile": str(path),
                                   "previousLogsFile": str(path)}]}}
        try:
            self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], "logs", body)
        except ApiException as exc:
            if exc.status != 409:
                raise

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
            known = self.crashing.pop(meta["uid"], None)
        if known:  # the pod's own log goes with it
            try:
                self.custom.delete_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], "logs",
                                                            meta["name"])
            except ApiException:
                pass

    # --- the watch --------------------------------------------------------------------------------

    def event(self, kind, pod):
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            self.forget(pod)
            return
        if needs_check(pod):
            self.handle(pod)

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
    parser.add_argument("--vllm-python", required=True, help="python of the vLLM 0.8.5 venv")
    args = parser.parse_args(argv)
    script = str(pathlib.Path(__file__).resolve().parent / "vllm_startup_check.py")
    t0 = time.time()
    server = CheckServer(args.vllm_python, script)
    print("pod_runner: vLLM check server ready in %.1f s" % (time.time() - t0), flush=True)
    api = config.new_client_from_config(config_file=args.kubeconfig)
    pathlib.Path(args.run, "pod-runner.ready").write_text(str(os.getpid()))
    Runner(api, args.run, server).loop()


if __name__ == "__main__":
    main()
