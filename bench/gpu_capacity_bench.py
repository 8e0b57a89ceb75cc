# Run: export SANDBOX_DIR=$PWD/.sandbox-bench SANDBOX_API_PORT=61443 SANDBOX_ETCD_PORT=61379 SANDBOX_ETCD_PEER_PORT=61380 \
#   SANDBOX_KWOK_PORT=61247 SANDBOX_ENGINE_PORT=61000 SANDBOX_WEBUI=0 SANDBOX_ENGINE=0 SANDBOX_CLASS_SIZE=0 \
#   && bash tests/cluster/sandbox.sh up && .venv/bin/python bench/gpu_capacity_bench.py; bash tests/cluster/sandbox.sh down
# (bench/report.py starts and stops that sandbox itself.)
"""Benchmark of haw_icc.llm.gpu_capacity on a big cluster (issue 3).

Fills the sandbox at $SANDBOX_DIR (a separate one: it gets 200 extra nodes and 10,000 pods) through the
admin kubeconfig, then runs, several times each and alternating:

  * the gpu_capacity module process exactly as Ansible runs it (python <module> <args file>), and
  * ``kubectl describe nodes`` (the baseline: what a person would type to get the same answer),

and prints the median wall time and median peak RSS of each, and the ratio. Targets: module < 3 s,
>= 5x faster than kubectl describe nodes, < 300 MB. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
SANDBOX = pathlib.Path(os.environ.get("SANDBOX_DIR", REPO / ".sandbox-bench"))
NS_PREFIX = "bench-"


def kube():
    import kubernetes

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(SANDBOX / "admin.kubeconfig"), client_configuration=cfg)
    cfg.connection_pool_maxsize = 16
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))


def node_body(i):
    v100s = i % 5 == 0
    gpu_type = "gpu-tesla-v100s" if v100s else "gpu-tesla-v100"
    product = "Tesla-V100S-PCIE-32GB" if v100s else "Tesla-V100-PCIE-16GB"
    name = "bench-gpu-%03d" % i
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                "nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": "32768" if v100s else "16384",
                                "nvidia.com/gpu.count": "4", "nvidia.com/gpu.present": "true"}},
        "spec": {"taints": [{"key": gpu_type, "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "32", "memory": "192Gi", "pods": "110", "nvidia.com/gpu": "4"},
                   "allocatable": {"cpu": "31", "memory": "188Gi", "pods": "110", "nvidia.com/gpu": "4"}},
    }


def pod_body(i, nodes):
    node = "bench-gpu-%03d" % (i % nodes)
    gpu = i < 600  # 600 one-GPU pods: 3 per node, the rest CPU-only, as on a busy shared cluster
    res = {"requests": {"cpu": "10m", "memory": "16Mi"}}
    if gpu:
        res = {"requests": {"cpu": "10m", "memory": "16Mi", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bench-pod-%05d" % i, "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {"nodeName": node,  # bound directly: no scheduler work for the fill
                 "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "c", "image": "registry.invalid/bench:1", "resources": res,
                                 "env": [{"name": "ROLE", "value": "worker-%d" % (i % 7)}]}]},
    }


def parallel(func, items, workers=8):
    items = list(items)
    lock = threading.Lock()
    errors = []

    def run():
        while True:
            with lock:
                if not items:
                    return
                item = items.pop()
            try:
                func(item)
            except Exception as exc:  # noqa: BLE001 - reported below
                if getattr(exc, "status", None) != 409:  # already exists: the fill is resumable
                    errors.append(exc)

    threads = [threading.Thread(target=run) for _worker in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def fill(nodes, pods, namespaces):
    import kubernetes

    api = kube()
    last = pods - 1
    try:
        api.read_namespaced_pod("bench-pod-%05d" % last, "%s%d" % (NS_PREFIX, last % namespaces), _preload_content=False)
        api.read_node("bench-gpu-%03d" % (nodes - 1), _preload_content=False)
        print("fill: already filled (%d nodes, %d pods)" % (nodes, pods))
        return
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
    start = time.monotonic()
    parallel(lambda i: api.create_node(node_body(i), _preload_content=False), range(nodes))
    for n in range(namespaces):
        try:
            api.create_namespace({"metadata": {"name": "%s%d" % (NS_PREFIX, n)}})
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
    print("fill: %d nodes in %.1fs" % (nodes, time.monotonic() - start))
    start = time.monotonic()
    parallel(lambda i: api.create_namespaced_pod("%s%d" % (NS_PREFIX, i % namespaces), pod_body(i, nodes),
                                                 _preload_content=False), range(pods))
    print("fill: %d pods in %.1fs" % (pods, time.monotonic() - start))


def measure(cmd, env=None):
    """(wall seconds, peak RSS MB, stdout) of one child process, from wait4's rusage."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (cmd[:3], proc.returncode, text[-2000:]))
    return wall, usage.ru_maxrss / 1024.0, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    if not (SANDBOX / "admin.kubeconfig").exists():
        raise SystemExit("no sandbox at %s; see the first lines of this script" % SANDBOX)
    fill(args.nodes, args.pods, args.namespaces)

    kubeconfig = str(SANDBOX / "admin.kubeconfig")
    kubectl = str(pathlib.Path((SANDBOX / "bin-dir").read_text().strip()) / "kubectl")
    module = str(REPO / "plugins" / "modules" / "gpu_capacity.py")
    argsfile = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"ANSIBLE_MODULE_ARGS": {"kubeconfig": kubeconfig, "gpu_type": "gpu-tesla-v100", "count": 2,
                                       "namespace": "wstu001-default"}}, argsfile)
    argsfile.close()
    env = dict(os.environ, PYTHONPATH=str(REPO / ".cache" / "collections"))
    mod_cmd = [sys.executable, module, argsfile.name]
    kubectl_cmd = [kubectl, "--kubeconfig", kubeconfig, "describe", "nodes"]

    text = measure(mod_cmd, env)[2]  # warm-up (page cache, API server caches), not counted
    result = json.loads(text[text.index("{"):])
    measure(kubectl_cmd)
    print("module answer: fits=%s, reason=%r, %d v100 nodes, %d GPU pods seen"
          % (result["fits"], result["reason"], len(result["nodes"]), result["gpu_pods"]))
    mod, base = [], []
    for _run in range(args.runs):  # alternate so that background load hits both alike
        mod.append(measure(mod_cmd, env)[:2])
        base.append(measure(kubectl_cmd)[:2])
    os.unlink(argsfile.name)

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    mw, mr, kw, kr = med(mod, 0), med(mod, 1), med(base, 0), med(base, 1)
    print("cluster: %d bench nodes, %d bench pods; %d runs each" % (args.nodes, args.pods, args.runs))
    print("gpu_capacity module:   median wall %.2f s, median peak RSS %.0f MB (runs: %s)"
          % (mw, mr, ", ".join("%.2f" % r[0] for r in mod)))
    print("kubectl describe nodes: median wall %.2f s, median peak RSS %.0f MB (runs: %s)"
          % (kw, kr, ", ".join("%.2f" % r[0] for r in base)))
    print("ratio: module is %.1fx faster than kubectl describe nodes (medians)" % (kw / mw))
    print("best runs (least disturbed by other load): module %.2f s, kubectl %.2f s, ratio %.1fx"
          % (min(r[0] for r in mod), min(r[0] for r in base), min(r[0] for r in base) / min(r[0] for r in mod)))
    print("load average during the runs: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    print("targets: wall < 3 s: %s; >= 5x faster: %s; RSS < 300 MB: %s"
          % ("met" if mw < 3 else "MISSED", "met" if kw / mw >= 5 else "MISSED", "met" if mr < 300 else "MISSED"))
    if args.json:
        out = {"benchmark": "gpu_capacity", "params": vars(args),
               "module_wall_s": [r[0] for r in mod], "module_rss_mb": [r[1] for r in mod],
               "kubectl_wall_s": [r[0] for r in base], "kubectl_rss_mb": [r[1] for r in base],
               "answer": {"fits": result["fits"], "reason": result["reason"], "nodes": len(result["nodes"]),
                          "gpu_pods": result["gpu_pods"]},
               "loadavg": os.getloadavg()}
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
