"""Helpers for tests against the running sandbox (tests/cluster/sandbox.sh up)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SANDBOX_DIR = pathlib.Path(os.environ.get("SANDBOX_DIR", REPO / ".sandbox"))
READER = "wstu001-default"  # may read nodes and pods cluster-wide
NS_ONLY = "wstu002-default"  # may read nothing outside its namespace
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class Sandbox:
    def __init__(self, root):
        self.root = root
        self.admin_kubeconfig = str(root / "admin.kubeconfig")
        self.bin = pathlib.Path((root / "bin-dir").read_text().strip())
        self.kubectl_path = str(self.bin / "kubectl")
        self.engine_port = int(os.environ.get("SANDBOX_ENGINE_PORT", "18000"))

    def kubeconfig(self, namespace):
        return str(self.root / "students" / ("%s.kubeconfig" % namespace))

    def kubectl(self, *args, kubeconfig=None, check=True, timeout=60):
        cmd = [self.kubectl_path, "--kubeconfig", kubeconfig or self.admin_kubeconfig, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed: %s" % (" ".join(args), proc.stderr))
        return proc

    def kubectl_json(self, *args, **kw):
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def port_forward(self, namespace, target, remote_port, kubeconfig=None):
        """Start `kubectl port-forward`, return (process, local_port)."""
        proc = subprocess.Popen(
            [self.kubectl_path, "--kubeconfig", kubeconfig or self.admin_kubeconfig, "-n", namespace,
             "port-forward", target, "0:%d" % remote_port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            proc.kill()
            raise AssertionError("port-forward did not start: %r %s" % (line, proc.stderr.read()))
        return proc, int(match.group(1))


@pytest.fixture(scope="session")
def sandbox():
    if not (SANDBOX_DIR / "admin.kubeconfig").exists():
        pytest.fail("The sandbox is not running (%s). Start it with `make sandbox-up` "
                    "or run everything with `make test`." % SANDBOX_DIR)
    return Sandbox(SANDBOX_DIR)


def http_json(url, payload=None, timeout=60):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def wait_until(predicate, timeout=60, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class PlaybookRun:
    """Result of one ansible-playbook run with the json callback."""

    def __init__(self, proc, data):
        self.proc = proc
        self.rc = proc.returncode
        self.data = data
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def stats(self):
        return (self.data or {}).get("stats", {})

    def changed(self, host=None):
        return sum(s.get("changed", 0) for h, s in self.stats.items() if host in (None, h))

    def failed(self, host=None):
        return sum(s.get("failures", 0) + s.get("unreachable", 0)
                   for h, s in self.stats.items() if host in (None, h))

    def task_results(self, name, host=None):
        """Results of every task whose name is ``name`` (for each host, or one)."""
        out = []
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name:
                    for h, res in task["hosts"].items():
                        if host in (None, h):
                            out.append(res)
        return out

    def result(self, name, host=None):
        found = self.task_results(name, host)
        assert found, "task %r did not run; stdout:\n%s\nstderr:\n%s" % (
            name, self.stdout[-3000:], self.stderr[-3000:])
        return found[-1]

    def failure_messages(self):
        msgs = []
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                for res in task["hosts"].values():
                    if res.get("failed"):
                        msgs.append(str(res.get("msg", "")))
        return msgs


def run_playbook(playbook, inventory=None, limit=None, extra_vars=None, check=False, diff=False,
                 env=None, timeout=900, verbosity=0):
    """Run a playbook of this repo (path) or a YAML text (written to a temp file)."""
    import tempfile

    path = pathlib.Path(playbook) if not str(playbook).lstrip().startswith("-") else None
    tmp = None
    if path is None:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yml", dir=str(REPO / "tests" / "integration"),
                                          prefix=".tmp-", delete=False)
        tmp.write(playbook)
        tmp.close()
        path = pathlib.Path(tmp.name)
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(path),
           "-i", str(inventory or REPO / "inventories" / "sandbox")]
    if limit:
        cmd += ["-l", limit]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    run_env = dict(os.environ)
    run_env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
                    "ANSIBLE_NOCOLOR": "1", "SANDBOX_DIR": str(SANDBOX_DIR),
                    "ANSIBLE_DEPRECATION_WARNINGS": "0"})
    if verbosity:
        run_env.pop("ANSIBLE_STDOUT_CALLBACK")
    run_env.update(env or {})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env,
                              cwd=str(REPO), check=False)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    data = None
    if not verbosity:
        try:
            data = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            data = None
    return PlaybookRun(proc, data)


def gpu_workload(name, namespace, gpus=1, replicas=1, labels=None, node_selector=None,
                 image="registry.invalid/engine:1.0", limits=None, service=True):
    """A Deployment of pods that ask for ``gpus`` GPUs and tolerate the V100 taint, and (with
    ``service``) a Service on port 8000; kwok routes that port to the sandbox's real engine.
    ``labels`` go on the Deployment and its pods; the selector is the label ``haw-icc-test``."""
    pod_labels = dict(labels or {}, **{"haw-icc-test": name})
    container = {
        "name": "engine", "image": image, "ports": [{"containerPort": 8000, "name": "http"}],
        "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "100m", "memory": "128Mi"},
                      "limits": dict({"nvidia.com/gpu": gpus}, **(limits or {}))},
    }
    spec = {"tolerations": [{"key": "gpu-tesla-v100", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    items = [{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"haw-icc-test": name}},
                 "template": {"metadata": {"labels": pod_labels}, "spec": spec}},
    }]
    if service:
        items.append({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"haw-icc-test": name},
                     "ports": [{"port": 8000, "targetPort": "http", "name": "http"}]},
        })
    return items


def kubectl_apply(sandbox, objects, kubeconfig=None):
    """``kubectl apply`` of a list of objects (or YAML text); returns the CompletedProcess."""
    text = objects if isinstance(objects, str) else json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": objects})
    return subprocess.run([sandbox.kubectl_path, "--kubeconfig", kubeconfig or sandbox.admin_kubeconfig,
                           "apply", "-f", "-"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)


PART_OF = "app.kubernetes.io/part-of=haw-icc-llm"


def remove_collection(sandbox, namespace):
    """Delete what the collection created in ``namespace`` (and wait until it is gone)."""
    sandbox.kubectl("-n", namespace, "delete", "deployment,service,pvc,secret,configmap", "-l", PART_OF,
                    "--wait=true", "--timeout=120s", check=False, timeout=150)


def live_pods(sandbox, namespace, selector="app.kubernetes.io/component=engine"):
    """The pods matching ``selector`` that are not being deleted."""
    pods = sandbox.kubectl_json("-n", namespace, "get", "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def engine_deployment(sandbox, namespace, name="vllm"):
    """(Deployment, its first container, the /dev/shm sizeLimit) of the engine."""
    dep = sandbox.kubectl_json("-n", namespace, "get", "deployment", name)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    shm = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "dshm"][0]
    return dep, container, shm["emptyDir"]["sizeLimit"]


def container_arg(container, flag):
    args = container["args"]
    return args[args.index(flag) + 1]


def ask_engine(sandbox, namespace, model, service="vllm", kubeconfig=None):
    """Ask the engine behind its Service ourselves (a port-forward, not through a playbook)."""
    proc, port = sandbox.port_forward(namespace, "svc/%s" % service, 8000,
                                      kubeconfig=kubeconfig or sandbox.kubeconfig(namespace))
    try:
        return http_json("http://127.0.0.1:%d/v1/chat/completions" % port, {
            "model": model, "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of Germany?"}]})
    finally:
        proc.kill()
        proc.wait()


NAMESPACE_KINDS = "deployments,replicasets,pods,services,persistentvolumeclaims,secrets,configmaps"


def namespace_snapshot(sandbox, namespace, kinds=NAMESPACE_KINDS, kubeconfig=None):
    """Every object of ``kinds`` in the namespace: "Kind/name" -> resourceVersion (service account
    token Secrets left out)."""
    items = sandbox.kubectl_json("-n", namespace, "get", kinds, kubeconfig=kubeconfig)["items"]
    return {"%s/%s" % (i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"] for i in items
            if not (i["kind"] == "Secret" and i.get("type") == "kubernetes.io/service-account-token")}


def free_port():
    """A local TCP port that is free right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# "Nothing changed on the cluster" compares the resourceVersions of every object of these kinds.
# Events are left out: they are records that controllers and kwok write on their own.
NAMESPACED_KINDS = ("deployments,replicasets,pods,services,configmaps,secrets,persistentvolumeclaims,jobs,ingresses,"
                    "serviceaccounts,roles,rolebindings,resourcequotas,limitranges")
CLUSTER_KINDS = ("namespaces,clusterroles,clusterrolebindings,persistentvolumes,storageclasses,priorityclasses,"
                 "customresourcedefinitions,validatingwebhookconfigurations,mutatingwebhookconfigurations")


def snapshot(sandbox, namespace, kinds=NAMESPACED_KINDS, selector=None):
    """``{"Kind/name": resourceVersion}`` of the objects of ``kinds`` in ``namespace`` (with
    ``selector`` only the labelled ones), read with the admin kubeconfig."""
    args = ["-n", namespace, "get", kinds] + (["-l", selector] if selector else [])
    return {"%s/%s" % (i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"]
            for i in sandbox.kubectl_json(*args)["items"]}


def cluster_snapshot(sandbox):
    """``{"namespace/Kind/name": resourceVersion}`` of every object of NAMESPACED_KINDS in every
    namespace, and of the cluster-scoped CLUSTER_KINDS ("-" as namespace): a new namespace,
    ClusterRoleBinding or object anywhere, or a changed one, shows up as a difference."""
    items = sandbox.kubectl_json("get", NAMESPACED_KINDS, "--all-namespaces")["items"]
    items += sandbox.kubectl_json("get", CLUSTER_KINDS)["items"]
    return {"%s/%s/%s" % (i["metadata"].get("namespace", "-"), i["kind"], i["metadata"]["name"]):
            i["metadata"]["resourceVersion"] for i in items}


def settled_cluster_snapshot(sandbox, timeout=90):
    """cluster_snapshot once two readings 2 s apart agree (objects of earlier tests may still be
    going away); the baseline of a "nothing changed" comparison."""
    state = {"last": cluster_snapshot(sandbox)}

    def same():
        time.sleep(2)
        now = cluster_snapshot(sandbox)
        stable, state["last"] = now == state["last"], now
        return stable
    wait_until(same, timeout=timeout, interval=0, what="the cluster to settle")
    return state["last"]


def changes(before, after):
    """What differs between two snapshots, readable in an assertion message."""
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
