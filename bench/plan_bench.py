"""Benchmark of the plan redesign (issue 11): Ansible's own cost of deploy, against floors measured
in the same run. Not a test; it only prints figures.

Starts its own sandbox (the class benchmark's: ``.sandbox-classbench``, ports 59xxx, 8 extra kwok
V100 nodes and 2 CPU nodes; see bench/class_bench.py) and measures, alternating, ``--runs`` times:

  * floor A: a one-task play (``kubernetes.core.k8s_info`` of the namespace's Deployments);
  * floor B: ``kubectl apply`` of the rendered manifests + ``kubectl rollout status``;
  * P2: ``deploy.yml -l wstu001-default`` into an empty namespace (wall, and user + sys CPU of the
    whole process tree, from ``wait4``);
  * P1: the same again, a no-op re-run (must report changed=0);

then ``--class-runs`` times P3: ``deploy.yml -l class`` (30 namespaces) from empty namespaces, and
``--p6-runs`` times P6: ``deploy.yml`` for the first ``--p6-size`` namespaces of the class whose
engine pods kwok holds un-ready for ``--p6-delay`` seconds (the pod annotation
``sandbox.haw-icc.de/ready-after``, tests/cluster/README.md), as models that load for that long.
Prints medians, the ratios against the floors and the targets (P1 <= 3.0 s; P2 <= 4 s and <= 2.5
CPU-s; P3 <= 45 s; P6 <= one delay + 60 s, where waiting forks at a time would take
ceil(size / forks) delays), and a profile of one deploy by task (the ``profile_tasks`` callback).

Run: .venv/bin/python bench/plan_bench.py [--runs 5] [--class-runs 1] [--p6-runs 1] [--p6-size 10]
     [--p6-delay 120] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import class_bench as cb  # noqa: E402  pylint: disable=wrong-import-position

REPO = cb.REPO
SINGLE, BASELINE, CLASS = cb.SINGLE, cb.BASELINE, cb.CLASS
FLOOR_PLAY = """
- hosts: %s
  gather_facts: false
  tasks:
    - name: One read
      kubernetes.core.k8s_info:
        kubeconfig: "{{ icc_kubeconfig }}"
        kind: Deployment
        namespace: "{{ inventory_hostname }}"
"""


def timed(cmd, env=None):
    """(wall seconds, user + sys CPU seconds of the process and all its waited-for children, proc)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or cb.ENVIRON,
                            cwd=str(REPO))
    out, err = proc.communicate()
    # communicate() has reaped the child; its rusage (the whole tree it waited for) is in RUSAGE_CHILDREN.
    wall = time.monotonic() - start
    proc.stdout_text, proc.stderr_text = out, err
    return wall, proc


def cpu_of(cmd, env=None):
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, proc = timed(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def playbook_cmd(name, limit, *extra):
    return [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(REPO / "playbooks" / name),
            "-i", str(REPO / "inventories" / "sandbox"), "-l", limit] + list(extra)


def stats_of(proc):
    try:
        return json.loads(proc.stdout_text[proc.stdout_text.index("{"):])["stats"]
    except ValueError:
        return {}


def checked(name, proc):
    stats = stats_of(proc)
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in stats.values())
    if proc.returncode != 0 or failed:
        sys.stderr.write(proc.stdout_text[-4000:] + proc.stderr_text[-2000:])
        raise RuntimeError("%s failed (rc %d)" % (name, proc.returncode))
    return sum(s.get("changed", 0) for s in stats.values())


def floor_play():
    path = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, dir=str(REPO / "bench"), prefix=".tmp-")
    path.write(FLOOR_PLAY % SINGLE)
    path.close()
    try:
        wall, cpu, proc = cpu_of([str(REPO / ".venv" / "bin" / "ansible-playbook"), path.name, "-i",
                                  str(REPO / "inventories" / "sandbox")])
        checked("one-task play", proc)
    finally:
        os.unlink(path.name)
    return wall, cpu


def profile():
    """One first deploy with the profile_tasks callback: the slowest tasks."""
    cb.wipe([SINGLE])
    env = dict(cb.ENVIRON, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks,profile_tasks",
               ANSIBLE_STDOUT_CALLBACK="default", PROFILE_TASKS_TASK_OUTPUT_LIMIT="12")
    _wall, proc = timed(playbook_cmd("deploy.yml", SINGLE), env)
    lines = [line for line in proc.stdout_text.splitlines() if re.search(r"-+ \d+\.\d+s$", line)]
    return lines[:12]


def med(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--class-runs", type=int, default=1)
    parser.add_argument("--p6-runs", type=int, default=1)
    parser.add_argument("--p6-size", type=int, default=10, help="namespaces of the P6 class")
    parser.add_argument("--p6-delay", type=int, default=120, help="seconds each engine pod stays un-ready")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    up = subprocess.run(["bash", "tests/cluster/sandbox.sh", "up"], cwd=str(REPO), env=cb.ENVIRON, check=False,
                        capture_output=True, text=True)
    if up.returncode != 0:
        sys.exit("sandbox up failed: %s" % (up.stdout[-2000:] + up.stderr[-2000:]))
    t0 = time.monotonic()
    try:
        cb.add_nodes()
        f = run(args)
    finally:
        if not args.keep:
            subprocess.run(["bash", "tests/cluster/sandbox.sh", "down"], cwd=str(REPO), env=cb.ENVIRON, check=False,
                           capture_output=True)
    report(f, time.monotonic() - t0)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"benchmark": "plan", "params": vars(args), "runs": f,
                                                       "loadavg": os.getloadavg()}, indent=1))


def run(args):
    f = {k: [] for k in ("floor_play", "floor_play_cpu", "floor_kubectl", "first", "first_cpu", "rerun", "rerun_cpu",
                         "rerun_changed", "class", "class_cpu", "p6")}
    manifests = None
    for i in range(args.runs):
        wall, cpu = floor_play()
        f["floor_play"].append(wall)
        f["floor_play_cpu"].append(cpu)
        cb.wipe([SINGLE])
        wall, cpu, proc = cpu_of(playbook_cmd("deploy.yml", SINGLE))
        checked("deploy", proc)
        f["first"].append(wall)
        f["first_cpu"].append(cpu)
        wall, cpu, proc = cpu_of(playbook_cmd("deploy.yml", SINGLE))
        f["rerun_changed"].append(checked("deploy re-run", proc))
        f["rerun"].append(wall)
        f["rerun_cpu"].append(cpu)
        if manifests is None:
            manifests = cb.export_manifests(SINGLE, BASELINE)
        cb.wipe([BASELINE])
        f["floor_kubectl"].append(cb.kubectl_baseline(manifests, BASELINE))
        print("run %d: one-task play %.2fs, kubectl %.2fs, first deploy %.2fs / %.2f CPU-s, re-run %.2fs (changed=%d)"
              % (i + 1, f["floor_play"][-1], f["floor_kubectl"][-1], f["first"][-1], f["first_cpu"][-1],
                 f["rerun"][-1], f["rerun_changed"][-1]), flush=True)
    cb.wipe([SINGLE, BASELINE])
    f["profile"] = profile()
    cb.wipe([SINGLE])
    for i in range(args.class_runs):
        cb.wipe(CLASS)
        wall, cpu, proc = cpu_of(playbook_cmd("deploy.yml", "class"))
        checked("class deploy", proc)
        f["class"].append(wall)
        f["class_cpu"].append(cpu)
        print("class run %d: 30 namespaces %.1fs / %.1f CPU-s" % (i + 1, wall, cpu), flush=True)
    cb.wipe(CLASS)
    slow = CLASS[:args.p6_size]
    held = json.dumps({"vllm_pod_annotations": {"sandbox.haw-icc.de/ready-after": "%ds" % args.p6_delay}})
    for i in range(args.p6_runs):
        cb.wipe(slow)
        wall, _cpu, proc = cpu_of(playbook_cmd("deploy.yml", ",".join(slow), "-e", held))
        checked("P6 class deploy", proc)
        f["p6"].append(wall)
        print("P6 run %d: %d namespaces, engine pods un-ready %d s: %.1fs" % (i + 1, len(slow), args.p6_delay, wall),
              flush=True)
    cb.wipe(slow)
    f["p6_size"], f["p6_delay"] = args.p6_size, args.p6_delay
    return f


def report(f, total):
    play, kube = med(f["floor_play"]), med(f["floor_kubectl"])
    rows = [
        ("floor: one-task k8s_info play", play, med(f["floor_play_cpu"]), "", "", None),
        ("floor: kubectl apply + rollout status", kube, None, "", "", None),
        ("P2 first deploy", med(f["first"]), med(f["first_cpu"]),
         "%.1fx play, %.1fx kubectl" % (med(f["first"]) / play, med(f["first"]) / kube), "<= 4 s, <= 2.5 CPU-s",
         med(f["first"]) <= 4 and med(f["first_cpu"]) <= 2.5),
        ("P1 no-op re-run", med(f["rerun"]), med(f["rerun_cpu"]), "changed=%s" % f["rerun_changed"], "<= 3.0 s",
         med(f["rerun"]) <= 3.0 and not any(f["rerun_changed"])),
        ("P3 30 namespaces", med(f["class"]), med(f["class_cpu"]), "%d run(s), forks 5" % len(f["class"]), "<= 45 s",
         med(f["class"]) <= 45),
        ("P6 %d namespaces, pods un-ready %d s" % (f["p6_size"], f["p6_delay"]), med(f["p6"]), None,
         "%d run(s); forks at a time: %d s" % (len(f["p6"]), -(-f["p6_size"] // 5) * f["p6_delay"]),
         "<= %d s" % (f["p6_delay"] + 60), med(f["p6"]) <= f["p6_delay"] + 60),
    ]
    print()
    print("%-40s %9s %8s  %-28s %-22s %s" % ("measure (median)", "wall s", "CPU s", "ratio / notes", "target", "met"))
    for name, wall, cpu, note, target, met in rows:
        shown_cpu = "" if cpu is None else "%.2f" % cpu
        verdict = "" if met is None else ("yes" if met else "NO")
        print("%-40s %9.2f %8s  %-28s %-22s %s" % (name, wall, shown_cpu, note, target, verdict))
    print()
    print("all runs: first %s; re-run %s; play %s; kubectl %s" % tuple(
        ", ".join("%.2f" % x for x in f[k]) for k in ("first", "rerun", "floor_play", "floor_kubectl")))
    print("slowest tasks of one first deploy (profile_tasks):")
    for line in f.get("profile") or []:
        print("  " + line)
    print("cpus %d, load average %s, wall time %.0fs" % (os.cpu_count() or 0, " ".join(
        "%.2f" % x for x in os.getloadavg()), total))


if __name__ == "__main__":
    main()
