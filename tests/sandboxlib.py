"""Helpers for tests against the running sandbox (tests/cluster/sandbox.sh up)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SANDBOX_DIR = pathlib.Path(os.environ.get("SANDBOX_DIR", REPO / ".sandbox"))
READER = "wstu001-default"  # may read nodes and pods cluster-wide
NS_ONLY = "wstu002-default"  # may read nothing outside its namespace
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# SmolLM2-135M has 9 attention heads and 3 KV heads, so vLLM splits it over 1 or 3 GPUs only (the
# preflight refuses 2 and 4). Tests of 2- and 4-GPU engines deploy TinyLlama's name instead: 32 heads
# and 4 KV heads, any GPU count of a node. The sandbox engine answers under that name (models.txt); its
# config.json is in the model store, so vLLM's own checks see TinyLlama's 2048-token context (MODEL_TP_VARS).
MODEL_TP = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
MODEL_TP_VARS = {"icc_model": MODEL_TP, "icc_max_total_tokens": 2048}


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


# --- A sandbox as every test expects to find it --------------------------------------------------------
#
# One sandbox serves the whole pytest session, so a test that stops the API server, deletes a node or
# holds GPUs must leave it as it found it, and the next test must not start before it is. Each test
# that uses the ``sandbox`` fixture waits at its start and at its end (bounded, with the whole list of
# what is still wrong); each test module must give back the GPUs it took.

SANDBOX_SH = REPO / "tests" / "cluster" / "sandbox.sh"
NODES_YAML = REPO / "tests" / "cluster" / "manifests" / "nodes.yaml"
# After the API server is back, the node lifecycle controller may still mark nodes unreachable
# (it judges leases it could not see renewed) up to its node-monitor-grace-period (50 s) plus one
# monitor period (5 s) after the restart; kwok's "kubelet" then makes them Ready again. Until this
# many seconds have passed, the sandbox is not settled, whatever the nodes say at the moment.
NODE_LIFECYCLE_SETTLE = 50 + 5 + 10
SETTLE_TIMEOUT = 180
_API_RESTARTED = {"at": None}


def sandbox_sh(*args):
    """Run ``tests/cluster/sandbox.sh`` on the test sandbox; a restart of the API server is recorded,
    so that the next settled check waits out the node lifecycle controller."""
    proc = subprocess.run(["bash", str(SANDBOX_SH), *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, SANDBOX_DIR=str(SANDBOX_DIR)), check=False)
    if "start-apiserver" in args:
        _API_RESTARTED["at"] = time.monotonic()
    assert proc.returncode == 0, "sandbox.sh %s failed: %s" % (" ".join(args), proc.stderr)
    return proc


def expected_nodes():
    """``{name: set of "key:effect" taints}`` of the nodes the sandbox starts with (nodes.yaml)."""
    import yaml

    out = {}
    for doc in yaml.safe_load_all(NODES_YAML.read_text()):
        for item in (doc or {}).get("items", [doc] if doc and doc.get("kind") == "Node" else []):
            if item.get("kind") == "Node":
                out[item["metadata"]["name"]] = {"%s:%s" % (t["key"], t["effect"])
                                                 for t in (item.get("spec") or {}).get("taints") or []}
    return out


def gpu_request(pod):
    return sum(int(float(((c.get("resources") or {}).get("requests") or {}).get("nvidia.com/gpu", 0) or 0))
               for c in (pod.get("spec") or {}).get("containers") or [])


def gpu_workload_key(pod):
    """"namespace/owner" of a pod that requests GPUs: its Deployment (the ReplicaSet name without the
    pod-template hash), else its owner, else the pod itself."""
    meta = pod["metadata"]
    owners = meta.get("ownerReferences") or [{}]
    owner = owners[0].get("name") or meta["name"]
    hashed = (meta.get("labels") or {}).get("pod-template-hash")
    if hashed and owner.endswith("-" + hashed):
        owner = owner[:-len(hashed) - 1]
    return "%s/%s" % (meta["namespace"], owner)


def gpu_pods(sandbox):
    return [p for p in sandbox.kubectl_json("get", "pods", "--all-namespaces")["items"] if gpu_request(p)]


def unsettled(sandbox):
    """Everything that differs from a settled sandbox, in words; [] when it is settled: the API server
    answers, the nodes of nodes.yaml exist, are Ready and carry only their own taints, no pod that is
    being deleted still holds GPUs, and a restarted API server is long enough back."""
    ready = sandbox.kubectl("get", "--raw", "/readyz", check=False, timeout=15)
    if ready.returncode != 0:
        return ["the API server does not answer /readyz: %s" % (ready.stderr.strip() or ready.stdout.strip())]
    problems = []
    since = _API_RESTARTED["at"]
    if since is not None and time.monotonic() - since < NODE_LIFECYCLE_SETTLE:
        problems.append("the API server came back %.0f s ago; the node lifecycle controller may still mark nodes "
                        "unreachable until %d s after that" % (time.monotonic() - since, NODE_LIFECYCLE_SETTLE))
    nodes = {n["metadata"]["name"]: n for n in sandbox.kubectl_json("get", "nodes")["items"]}
    for name, taints in sorted(expected_nodes().items()):
        node = nodes.get(name)
        if node is None:
            problems.append("node %s is missing" % name)
            continue
        cond = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
        if not cond or cond[0].get("status") != "True":
            problems.append("node %s is not Ready (%s)" % (name, cond[0] if cond else "no Ready condition"))
        extra = {"%s:%s" % (t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []} - taints
        if extra:
            problems.append("node %s has the taint(s) %s" % (name, ", ".join(sorted(extra))))
        if (node.get("spec") or {}).get("unschedulable"):
            problems.append("node %s is cordoned" % name)
    for pod in gpu_pods(sandbox):
        if pod["metadata"].get("deletionTimestamp"):
            problems.append("pod %s/%s is being deleted and still holds %d GPU(s)" % (
                pod["metadata"]["namespace"], pod["metadata"]["name"], gpu_request(pod)))
    return problems


def wait_settled(sandbox, timeout=SETTLE_TIMEOUT, when="before the test"):
    state = {"problems": None}

    def settled():
        state["problems"] = unsettled(sandbox)
        return not state["problems"]
    deadline = time.monotonic() + timeout
    while not settled():
        if time.monotonic() >= deadline:
            raise AssertionError("The sandbox did not settle %s within %d s:\n- %s" % (
                when, timeout, "\n- ".join(state["problems"])))
        time.sleep(1)


@pytest.fixture(autouse=True)
def _settled_sandbox(request):
    """Every test that uses the sandbox starts and ends on a settled sandbox (see ``unsettled``)."""
    if "sandbox" not in request.fixturenames:
        yield
        return
    box = request.getfixturevalue("sandbox")
    wait_settled(box, when="before %s" % request.node.name)
    yield
    wait_settled(box, when="after %s (it must leave the sandbox as it found it)" % request.node.name)


@pytest.fixture(autouse=True, scope="module")
def _module_gives_back_gpus(request):
    """A test module leaves no more GPU-holding workloads behind than there were when it started."""
    if not (SANDBOX_DIR / "admin.kubeconfig").exists() or "/integration/" not in str(request.node.fspath):
        yield
        return
    box = Sandbox(SANDBOX_DIR)
    before = {gpu_workload_key(p) for p in gpu_pods(box)}
    yield
    state = {}

    def given_back():
        state["left"] = sorted({gpu_workload_key(p) for p in gpu_pods(box)} - before)
        return not state["left"]
    deadline = time.monotonic() + 60
    while not given_back():
        if time.monotonic() >= deadline:
            raise AssertionError("%s left GPU-holding workloads behind: %s" % (
                request.node.name, ", ".join(state["left"])))
        time.sleep(1)


def http_json(url, payload=None, timeout=60):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def webui_models(url, email="admin@example.org", password="sandbox-test-password-1"):
    """The model ids the real Open WebUI at ``url`` (the sandbox's, pod_webui.py) lists to its first (admin)
    account, which this signs up (or in, when it exists); the first request may start the program."""
    token = None
    for path in ("/api/v1/auths/signup", "/api/v1/auths/signin"):
        try:
            token = http_json(url.rstrip("/") + path, {"name": "Admin", "email": email, "password": password},
                              timeout=180)["token"]
            break
        except urllib.error.HTTPError:
            continue
    assert token, "neither sign-up nor sign-in worked at %s" % url
    req = urllib.request.Request(url.rstrip("/") + "/api/models", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return [m["id"] for m in json.loads(resp.read().decode())["data"]]


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

    def retried_tasks(self):
        """The tasks whose ``until`` loop retried on some host (the default callback prints "FAILED -
        RETRYING" for each retry)."""
        return [task["task"]["name"] for play in (self.data or {}).get("plays", []) for task in play.get("tasks", [])
                if any("retries" in res for res in task["hosts"].values())]

    def failure_messages(self):
        msgs = []
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                for res in task["hosts"].values():
                    if res.get("failed"):
                        msgs.append(str(res.get("msg", "")))
        return msgs


def run_playbook(playbook, inventory=None, limit=None, extra_vars=None, check=False, diff=False,
                 env=None, timeout=900, verbosity=0, deprecations=False):
    """Run a playbook of this repo (path) or a YAML text (written to a temp file). A deprecation
    warning fails the test unless ``deprecations`` (the collection's own, of a deprecated input)."""
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
                    "ANSIBLE_NOCOLOR": "1", "SANDBOX_DIR": str(SANDBOX_DIR)})
    if verbosity:
        run_env.pop("ANSIBLE_STDOUT_CALLBACK")
    hub = SANDBOX_DIR / "hub-endpoint"
    if hub.exists():  # every inventory's preflight reads the sandbox's Hub double (the sandbox's sets icc_hf_endpoint too)
        run_env["HF_ENDPOINT"] = hub.read_text().strip()
    run_env.update(env or {})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env,
                              cwd=str(REPO), check=False)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    if not deprecations:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "[DEPRECATION WARNING]" in ln]
        assert not lines, "%s printed deprecation warnings:\n%s" % ("the play" if tmp is not None else playbook, "\n".join(lines))
    data = None
    if not verbosity:
        try:
            # The json callback's document starts at a line's first column (progress lines are indented).
            start = re.search(r"^\{", proc.stdout, re.M)
            data = json.loads(proc.stdout[start.start():]) if start else None
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


def running_pod(sandbox, ns, component="engine"):
    """The one Running pod of ``component`` in ``ns`` (waits up to 90 s for exactly one)."""
    def find():
        pods = sandbox.kubectl_json("-n", ns, "get", "pods", "-l",
                                    "app.kubernetes.io/component=%s" % component)["items"]
        ok = [p for p in pods if p["status"].get("phase") == "Running"
              and not p["metadata"].get("deletionTimestamp")]
        return ok[0] if len(ok) == 1 and len(pods) == 1 else None
    return wait_until(find, timeout=90, what="one running %s pod in %s" % (component, ns))


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


def hub_endpoint():
    """The URL of the sandbox's Hugging Face Hub double (tests/cluster/hub_double.py)."""
    return (SANDBOX_DIR / "hub-endpoint").read_text().strip()


def grant_hub_access(repo, token):
    """Grant ``token`` the gated ``repo`` on the Hub double (what accepting the license does)."""
    http_json(hub_endpoint() + "/_double/grant", {"repo": repo, "token": token})


def hub_requests():
    """How many requests of each kind the Hub double answered (``model_info <repo>``, ...)."""
    return http_json(hub_endpoint() + "/_double/requests")


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


# --- Run order ----------------------------------------------------------------------------------------
#
# Test modules are independent of each other (each leaves the sandbox settled and gives back its GPUs,
# see above), so their order may be shuffled: TEST_ORDER_SEED=<number> (or --module-order-seed) runs
# the modules in an order drawn from that seed. Tests inside a module keep their written order: some
# modules walk one scenario step by step (deploy, then scale, then change_model ...).

def pytest_addoption(parser):
    parser.addoption("--module-order-seed", default=os.environ.get("TEST_ORDER_SEED") or None,
                     help="shuffle the order of the test modules with this seed (also TEST_ORDER_SEED)")


def pytest_report_header(config):
    seed = config.getoption("--module-order-seed")
    return "test modules in %s" % ("an order shuffled with seed %s" % seed if seed else "their written order")


def pytest_collection_modifyitems(config, items):
    seed = config.getoption("--module-order-seed")
    if not seed:
        return
    import random

    modules = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = sorted(modules)
    random.Random(int(seed)).shuffle(order)
    items[:] = [item for name in order for item in modules[name]]


# --- vLLM 0.8.5's own start-up checks on every vLLM pod (tests/cluster/pod_runner.py) ---------------
#
# With SANDBOX_VLLM_CHECKS=1 (`make test`), no vLLM pod becomes Ready before vLLM's own code has
# accepted its argv and kubelet environment; a refused pod crash-loops as on a node. The session
# reports how many pods were checked and fails on a refusal that no test asked for.

_VLLM_CHECKS = {"start": 0, "engines_start": 0, "expected": set()}


def pod_runner_features():
    """What pod_runner.py does in this sandbox: {"vllm_checks", "engines", "webuis"} (all False without it)."""
    path = SANDBOX_DIR / "pod-runner.ready"
    return json.loads(path.read_text()) if path.exists() else {"vllm_checks": False, "engines": False, "webuis": False}


def vllm_checks_on():
    return pod_runner_features()["vllm_checks"]


def vllm_checks():
    """The verdicts pod_runner.py recorded in this test session, oldest first."""
    path = SANDBOX_DIR / "vllm-checks.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines[_VLLM_CHECKS["start"]:] if line.strip()]


def pod_engines():
    """The engine processes pod_runner.py started for pods in this test session (pod_engines.py), oldest first."""
    path = SANDBOX_DIR / "engines.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines[_VLLM_CHECKS["engines_start"]:] if line.strip()]


def pod_engine(pod):
    """The engine process of ``pod`` (its served names, context, whether it wants a key, its port)."""
    meta = pod["metadata"]
    found = [e for e in pod_engines() if e["namespace"] == meta["namespace"] and e["pod"] == meta["name"]]
    assert found, "no engine process of its own for pod %s/%s (pod_runner.py)" % (meta["namespace"], meta["name"])
    return found[-1]


def expect_vllm_refusals(namespace):
    """A test that makes vLLM refuse pods on purpose names their namespace here."""
    _VLLM_CHECKS["expected"].add(namespace)


def pytest_sessionstart(session):  # pylint: disable=unused-argument
    for key, name in (("start", "vllm-checks.jsonl"), ("engines_start", "engines.jsonl")):
        path = SANDBOX_DIR / name
        _VLLM_CHECKS[key] = len(path.read_text().splitlines()) if path.exists() else 0


def _unexpected_refusals():
    return [c for c in vllm_checks() if not c["ok"] and c["namespace"] not in _VLLM_CHECKS["expected"]]


def pytest_sessionfinish(session, exitstatus):
    if vllm_checks_on() and _unexpected_refusals() and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # pylint: disable=unused-argument
    if not vllm_checks_on():
        if (SANDBOX_DIR / "admin.kubeconfig").exists():
            terminalreporter.write_line("vLLM 0.8.5 start-up checks of the pods: off (SANDBOX_VLLM_CHECKS=0)")
        return
    checks = vllm_checks()
    refused = [c for c in checks if not c["ok"]]
    terminalreporter.section("vLLM 0.8.5's own start-up checks on the vLLM pods (tests/cluster/pod_runner.py)")
    terminalreporter.write_line("%d vLLM pods created in this session ran vLLM 0.8.5's start-up checks before "
                                "they could become Ready: %d passed, %d refused (crash-looping as on a node)"
                                % (len(checks), len(checks) - len(refused), len(refused)))
    for c in refused:
        expected = "expected" if c["namespace"] in _VLLM_CHECKS["expected"] else "NOT EXPECTED: a defect"
        line = "  %s/%s, %s: %s (%s)" % (c["namespace"], c["pod"], c["stage"], c["error"], expected)
        terminalreporter.write_line(line)
    everything = pod_engines()
    for what, engines in (
            ("engine pods (vLLM and TGI) got an engine process of their own (tests/cluster/pod_engines.py)",
             [e for e in everything if e.get("engine") != "llamacpp"]),
            ("llama.cpp pods ran the real llama-server from their argv and env (tests/cluster/pod_llamacpp.py)",
             [e for e in everything if e.get("engine") == "llamacpp"])):
        if not engines:
            continue
        seconds = sorted(e["seconds"] for e in engines)
        terminalreporter.write_line(
            "%d %s: %d with an API key, %d answered (%d exited: crash-looping); start to first answer median "
            "%.2f s, max %.2f s" % (
                len(engines), what, sum(1 for e in engines if e["api_key"]), sum(1 for e in engines if e["answered"]),
                sum(1 for e in engines if not e["answered"]), seconds[len(seconds) // 2], seconds[-1]))


# --- What a kubelet would give the pod's containers -------------------------------------------------

def kubelet_environment(sandbox, pod, container=None):
    """The environment a kubelet gives ``container`` (default: the first) of ``pod``, from the live
    Services, Secrets and ConfigMaps of its namespace and the ``kubernetes`` Service of ``default``
    (tests/cluster/kubelet_env.py has the rules)."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    import kubelet_env  # pylint: disable=import-outside-toplevel

    ns = pod["metadata"]["namespace"]
    items = sandbox.kubectl_json("-n", ns, "get", "services,secrets,configmaps")["items"]
    return kubelet_env.container_env(
        pod, container,
        services=[i for i in items if i["kind"] == "Service"],
        secrets=[i for i in items if i["kind"] == "Secret"],
        configmaps=[i for i in items if i["kind"] == "ConfigMap"],
        master_service=sandbox.kubectl_json("-n", "default", "get", "service", "kubernetes"))


# --- vLLM 0.8.5's own start-up checks -----------------------------------------------------------------

def vllm_venv():
    """The sandbox's vLLM 0.8.5 venv (hack/sandbox-venv.sh vllm; `make test` builds it, cached by version)."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "sandbox-venv.sh"), "vllm"], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, "hack/sandbox-venv.sh vllm failed: %s" % proc.stderr[-3000:]
    return pathlib.Path(proc.stdout.strip().splitlines()[-1])


def vllm_startup_check(argv, env):
    """Run vLLM 0.8.5's own start-up checks (tests/cluster/vllm_startup_check.py) on a pod's argv and
    kubelet environment; returns its verdict ``{"ok", "checks", "error", "stage"}``."""
    proc = subprocess.run([str(vllm_venv() / "bin" / "python"), str(REPO / "tests" / "cluster" / "vllm_startup_check.py")],
                          input=json.dumps({"argv": argv, "env": env}), capture_output=True, text=True, timeout=300,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, "vllm_startup_check.py printed no verdict: %s" % proc.stderr[-3000:]
    return json.loads(lines[-1])


LLM_HEALTH_PLAY = """
- name: Ask the engine
  hosts: all
  gather_facts: false
  tasks:
    - name: Ask
      haw_icc.llm.llm_health:
        kubeconfig: "{{ icc_kubeconfig }}"
        namespace: "{{ icc_namespace }}"
%s
"""


def llm_health_play(**options):
    """A play of one task, "Ask": haw_icc.llm.llm_health with the host's kubeconfig and namespace and
    ``options`` (JSON values are YAML)."""
    return LLM_HEALTH_PLAY % "\n".join("        %s: %s" % (k, json.dumps(v)) for k, v in options.items())
