"""Benchmark of the class-scale workflow (issue 5): deploy, re-run, status and cleanup for one and
for 30 student namespaces, against a kubectl baseline. Not a test; it only prints figures.

Starts a sandbox of its own ($SANDBOX_DIR, default .sandbox-classbench, ports 59xxx) with 8 extra
kwok V100 nodes and 2 CPU nodes (so that 30 one-GPU engines and 30 WebUIs fit), then measures with the sandbox inventory and the
students' own kubeconfigs:

  * single: ``playbooks/deploy.yml -l wstu001-default`` from an empty namespace (engine + WebUI +
    health check), and its idempotent re-run (must report changed=0);
  * kubectl: the same rendered manifests (the objects the roles applied in the single run, exported
    and stripped of server fields) applied to an empty wstu002-default with ``kubectl apply`` and
    waited for with ``kubectl rollout status``;
  * class: ``deploy.yml -l class`` for wcls001..wcls030 with the default forks, its re-run
    (changed=0), ``status.yml -l class`` and ``cleanup.yml -l class -e confirm=true``.

Prints medians (single and kubectl: --runs runs each; class: --class-runs) and the ratios against the
targets: single deploy <= 2x kubectl; re-run <= 60 % of the first run; 30 namespaces <= 4x single.

Run: .venv/bin/python bench/class_bench.py [--runs 3] [--class-runs 1] [--class-size 30] [--keep] [--json FILE]
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
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {
    "SANDBOX_DIR": str(REPO / ".sandbox-classbench"), "SANDBOX_API_PORT": "59443", "SANDBOX_ETCD_PORT": "59379",
    "SANDBOX_ETCD_PEER_PORT": "59380", "SANDBOX_KWOK_PORT": "59247", "SANDBOX_ENGINE_PORT": "59800", "SANDBOX_HUB_PORT": "59090",
    "SANDBOX_WEBUI": "0",
}
SINGLE = "wstu001-default"
BASELINE = "wstu002-default"
CLASS = ["wcls%03d-default" % i for i in range(1, 31)]
PART_OF = "app.kubernetes.io/part-of=haw-icc-llm"
EXTRA_NODES = 8


def env():
    out = dict(os.environ)
    for key, value in ENV.items():
        out[key] = os.environ.get("BENCH_" + key, value)
    out.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0",
                "PATH": "%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", ""))})
    return out


ENVIRON = env()
SANDBOX = pathlib.Path(ENVIRON["SANDBOX_DIR"])


def kubectl(*args, kubeconfig=None, stdin=None, check=True, timeout=300):
    bin_dir = (SANDBOX / "bin-dir").read_text().strip()
    cmd = [str(pathlib.Path(bin_dir) / "kubectl"), "--kubeconfig", kubeconfig or str(SANDBOX / "admin.kubeconfig")]
    proc = subprocess.run(cmd + list(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("kubectl %s: %s" % (" ".join(args), proc.stderr))
    return proc


def student(ns):
    return str(SANDBOX / "students" / ("%s.kubeconfig" % ns))


def playbook(name, limit, *extra):
    """Run a playbook; returns (seconds, changed, failed, proc)."""
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(REPO / "playbooks" / name),
           "-i", str(REPO / "inventories" / "sandbox"), "-l", limit] + list(extra)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENVIRON, cwd=str(REPO), check=False,
                          timeout=1800)
    took = time.monotonic() - start
    try:
        stats = json.loads(proc.stdout[proc.stdout.index("{"):])["stats"]
    except ValueError:
        stats = {}
    changed = sum(s.get("changed", 0) for s in stats.values())
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in stats.values())
    if proc.returncode != 0 or failed:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise RuntimeError("%s -l %s failed (rc %d)" % (name, limit, proc.returncode))
    return took, changed, failed, proc


def wipe(namespaces):
    """Delete everything of the collection (PVCs and Secrets too) and wait until it is gone."""
    for ns in namespaces:
        kubectl("-n", ns, "delete", "deployment,service,pvc,secret,configmap,ingress", "-l", PART_OF,
                "--wait=false", check=False)
    for ns in namespaces:
        kubectl("-n", ns, "wait", "--for=delete", "pod,pvc", "-l", PART_OF, "--timeout=180s", check=False,
                timeout=240)


def add_nodes():
    nodes = []
    for i in range(1, EXTRA_NODES + 1):
        name = "classbench-gpu-%02d" % i
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                    "nvidia.com/gpu.product": "Tesla-V100-PCIE-16GB", "nvidia.com/gpu.memory": "16384",
                                    "nvidia.com/gpu.count": "4", "nvidia.com/gpu.present": "true"}},
            "spec": {"taints": [{"key": "gpu-tesla-v100", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "64", "memory": "384Gi", "pods": "110", "nvidia.com/gpu": "4"},
                       "allocatable": {"cpu": "63", "memory": "380Gi", "pods": "110", "nvidia.com/gpu": "4"}}})
    # CPU nodes for the 30 WebUIs (the sandbox has one small CPU node).
    for i in range(1, 3):
        name = "classbench-cpu-%02d" % i
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"}},
            "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                       "allocatable": {"cpu": "63", "memory": "250Gi", "pods": "110"}}})
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    kubectl("wait", "--for=condition=Ready", "node", "-l", "type=kwok", "--timeout=120s", timeout=180)


def export_manifests(ns, target):
    """The objects the roles applied in ``ns``, as plain manifests for ``target``."""
    items = json.loads(kubectl("-n", ns, "get", "secret,pvc,service,deployment", "-l", PART_OF, "-o", "json",
                               kubeconfig=student(ns)).stdout)["items"]
    out = []
    for obj in items:
        meta = obj["metadata"]
        clean = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                 "metadata": {"name": meta["name"], "namespace": target, "labels": meta.get("labels", {})}}
        for key in ("spec", "data", "type"):
            if key in obj:
                clean[key] = obj[key]
        spec = clean.get("spec", {})
        if obj["kind"] == "Service":
            dropped = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
                       "sessionAffinity")
            spec = {k: v for k, v in spec.items() if k not in dropped}
        if obj["kind"] == "PersistentVolumeClaim":
            spec = {k: v for k, v in spec.items() if k not in ("volumeName",)}
        if "spec" in clean:
            clean["spec"] = spec
        out.append(clean)
    order = {"Secret": 0, "PersistentVolumeClaim": 1, "Service": 2, "Deployment": 3}
    return sorted(out, key=lambda o: order[o["kind"]])


def kubectl_baseline(manifests, ns):
    path = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"apiVersion": "v1", "kind": "List", "items": manifests}, path)
    path.close()
    deployments = [m["metadata"]["name"] for m in manifests if m["kind"] == "Deployment"]
    start = time.monotonic()
    kubectl("apply", "-f", path.name, kubeconfig=student(ns))
    for name in deployments:
        kubectl("-n", ns, "rollout", "status", "deployment/%s" % name, "--timeout=300s", kubeconfig=student(ns),
                timeout=360)
    took = time.monotonic() - start
    os.unlink(path.name)
    return took


def med(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the single deploy and the kubectl baseline")
    parser.add_argument("--class-runs", type=int, default=1, help="runs of the 30-namespace deploy")
    parser.add_argument("--class-size", type=int, default=len(CLASS), choices=range(1, len(CLASS) + 1),
                        metavar="1..%d" % len(CLASS), help="namespaces of the class run (default %d)" % len(CLASS))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    t_all = time.monotonic()
    up = subprocess.run(["bash", "tests/cluster/sandbox.sh", "up"], cwd=str(REPO), env=ENVIRON, check=False,
                        capture_output=True, text=True)
    if up.returncode != 0:
        sys.exit("sandbox up failed: %s" % (up.stdout[-2000:] + up.stderr[-2000:]))
    try:
        add_nodes()
        figures = run(args)
    finally:
        if not args.keep:
            subprocess.run(["bash", "tests/cluster/sandbox.sh", "down"], cwd=str(REPO), env=ENVIRON, check=False,
                           capture_output=True)
    total = time.monotonic() - t_all
    report(figures, args, total)
    if args.json:
        out = {"benchmark": "class", "params": vars(args), "runs": figures, "wall_s": total,
               "loadavg": os.getloadavg()}
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1))


def run(args):
    f = {k: [] for k in ("single", "single_rerun", "single_rerun_changed", "kubectl", "class", "class_rerun",
                         "class_rerun_changed", "status", "cleanup", "class_changed")}
    manifests = None
    for i in range(args.runs):
        wipe([SINGLE])
        took, _changed, _f, _p = playbook("deploy.yml", SINGLE)
        f["single"].append(took)
        took, changed, _f, _p = playbook("deploy.yml", SINGLE)
        f["single_rerun"].append(took)
        f["single_rerun_changed"].append(changed)
        if manifests is None:
            manifests = export_manifests(SINGLE, BASELINE)
        wipe([BASELINE])
        f["kubectl"].append(kubectl_baseline(manifests, BASELINE))
        print("run %d: single %.1fs, re-run %.1fs (changed=%d), kubectl %.1fs" % (
            i + 1, f["single"][-1], f["single_rerun"][-1], changed, f["kubectl"][-1]), flush=True)
    wipe([SINGLE, BASELINE])
    klass = CLASS[:args.class_size]
    limit = "class" if len(klass) == len(CLASS) else ",".join(klass)
    for i in range(args.class_runs):
        wipe(klass)
        took, changed, _f, _p = playbook("deploy.yml", limit)
        f["class"].append(took)
        f["class_changed"].append(changed)
        took, changed, _f, _p = playbook("deploy.yml", limit)
        f["class_rerun"].append(took)
        f["class_rerun_changed"].append(changed)
        took, _c, _f, _p = playbook("status.yml", limit)
        f["status"].append(took)
        took, _c, _f, _p = playbook("cleanup.yml", limit, "-e", "confirm=true")
        f["cleanup"].append(took)
        print("class run %d: deploy %.1fs (changed=%d), re-run %.1fs (changed=%d), status %.1fs, cleanup %.1fs" % (
            i + 1, f["class"][-1], f["class_changed"][-1], f["class_rerun"][-1], changed, f["status"][-1],
            f["cleanup"][-1]), flush=True)
    wipe(klass)
    return f


def report(f, args, total):
    single, rerun, kube = med(f["single"]), med(f["single_rerun"]), med(f["kubectl"])
    klass, krerun = med(f["class"]), med(f["class_rerun"])
    rows = [
        ("single deploy (1 namespace)", single, "%d runs" % len(f["single"]),
         "%.2fx kubectl" % (single / kube), "<= 2x", single / kube <= 2),
        ("single re-run", rerun, "changed=%s" % f["single_rerun_changed"],
         "%.0f %% of first" % (100 * rerun / single), "<= 60 %", rerun / single <= 0.6
         and not any(f["single_rerun_changed"])),
        ("kubectl apply + rollout status", kube, "%d runs" % len(f["kubectl"]), "", "", None),
        ("%d namespaces deploy" % args.class_size, klass, "%d run(s), forks 5" % len(f["class"]),
         "%.2fx single" % (klass / single), "<= 4x", klass / single <= 4),
        ("%d namespaces re-run" % args.class_size, krerun, "changed=%s" % f["class_rerun_changed"],
         "%.0f %% of first" % (100 * krerun / klass), "<= 60 %", krerun / klass <= 0.6
         and not any(f["class_rerun_changed"])),
        ("%d namespaces status" % args.class_size, med(f["status"]), "", "", "", None),
        ("%d namespaces cleanup" % args.class_size, med(f["cleanup"]), "", "", "", None),
    ]
    print()
    print("%-32s %9s  %-22s %-18s %-8s %s" % ("measure", "median s", "runs / notes", "ratio", "target", "met"))
    for name, secs, note, ratio, target, met in rows:
        print("%-32s %9.1f  %-22s %-18s %-8s %s" % (name, secs, note, ratio, target,
                                                    "" if met is None else ("yes" if met else "NO")))
    print()
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        load = "?"
    print("all runs: single %s; kubectl %s; class %s" % (
        ", ".join("%.1f" % x for x in f["single"]), ", ".join("%.1f" % x for x in f["kubectl"]),
        ", ".join("%.1f" % x for x in f["class"])))
    print("cpus %d, load average %s, benchmark wall time %.0fs" % (os.cpu_count() or 0, load, total))


if __name__ == "__main__":
    main()
