"""Benchmark of the sandbox's engine per pod (tests/cluster/pod_engines.py, issue 15): how fast a class
of engine pods gets its engines and how much memory they hold at once. Not a test; it only prints figures.

No cluster is needed: it drives pod_engines.py --serve as pod_runner.py does. Measured in the same run:

  * ours: one engine server forks --count engines (each: SmolLM2-135M GGUF, n_ctx 4096, the vllm role's
    default max_model_len, one thread), one after another, as pod_runner.py starts them for a class deploy;
    for each, the time from the request to its first HTTP answer;
  * baseline: --count fresh ``python -m llama_cpp.server`` processes with the same settings (what a
    sandbox without the fork server would start per pod), one after another, timed the same way.

With all engines of one kind running, it reads their memory: the sum of PSS (shared pages split between
the processes that share them, so the sum is what they hold together) and of RSS, from /proc/<pid>/smaps_rollup,
and the drop of MemAvailable from before the first start. Prints medians and the ratios ours/baseline.

Run: .venv/bin/python bench/pod_engines_bench.py [--count 30] [--baseline-count 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "cluster"))
import pod_engines  # noqa: E402  pylint: disable=wrong-import-position
import pod_runner  # noqa: E402  pylint: disable=wrong-import-position

N_CTX = 4096


def mem_available_kib():
    for line in open("/proc/meminfo", encoding="ascii"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def rollup(pid):
    """(PSS, RSS) of a process in KiB."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid, encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Pss:", "Rss:"):
                out[parts[0][:-1]] = int(parts[1])
    return out["Pss"], out["Rss"]


def memory(pids, before):
    pss = rss = 0
    for pid in pids:
        p, r = rollup(pid)
        pss, rss = pss + p, rss + r
    return {"pss_mib": round(pss / 1024, 1), "rss_mib": round(rss / 1024, 1),
            "mem_available_drop_mib": round((before - mem_available_kib()) / 1024, 1)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ours(count, logs):
    before = mem_available_kib()
    server = pod_runner.LineServer("engine server", [sys.executable, str(REPO / "tests" / "cluster" / "pod_engines.py"),
                                                     "--serve"])
    times, pids = [], []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            started = server.call({"op": "start", "id": "pod-%02d" % i, "names": ["Org/Model-%02d" % i],
                                   "n_ctx": N_CTX, "api_key": "sk-bench", "log": str(logs / ("ours-%02d.log" % i))})
            assert pod_runner.wait_answers(started["port"], 120), "engine %d did not answer" % i
            times.append(time.perf_counter() - t0)
            pids.append(started["pid"])
        time.sleep(1)
        mem = memory(pids + [server.proc.pid], before)
    finally:
        server.proc.stdin.close()
        server.proc.wait(timeout=60)
    return times, mem


def baseline(count, logs):
    gguf = pod_engines.default_gguf()
    before = mem_available_kib()
    times, procs = [], []
    try:
        for i in range(count):
            port = free_port()
            t0 = time.perf_counter()
            log = open(logs / ("baseline-%02d.log" % i), "w", encoding="utf-8")  # pylint: disable=consider-using-with
            procs.append(subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", "Org/Model-%02d" % i,
                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "1",
                 "--n_threads_batch", "1", "--api_key", "sk-bench", "--verbose", "false"],
                stdout=log, stderr=subprocess.STDOUT))
            assert pod_runner.wait_answers(port, 120), "baseline server %d did not answer" % i
            times.append(time.perf_counter() - t0)
        time.sleep(1)
        mem = memory([p.pid for p in procs], before)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    return times, mem


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--baseline-count", type=int, default=30)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pod-engines-bench-") as tmp:
        logs = pathlib.Path(tmp)
        base_times, base_mem = baseline(args.baseline_count, logs)
        our_times, our_mem = ours(args.count, logs)
    result = {
        "count": args.count, "baseline_count": args.baseline_count, "n_ctx": N_CTX,
        "ours": {"start_median_s": round(statistics.median(our_times), 3), "start_max_s": round(max(our_times), 3),
                 "all_started_s": round(sum(our_times), 1), **our_mem},
        "baseline": {"start_median_s": round(statistics.median(base_times), 3),
                     "start_max_s": round(max(base_times), 3), "all_started_s": round(sum(base_times), 1), **base_mem},
    }
    o, b = result["ours"], result["baseline"]
    result["ratio_start_median"] = round(o["start_median_s"] / b["start_median_s"], 3)
    per_ours, per_base = o["pss_mib"] / args.count, b["pss_mib"] / args.baseline_count
    result["ratio_pss_per_engine"] = round(per_ours / per_base, 3)
    print("engine per pod, %d engines (fork server) vs %d fresh llama_cpp.server processes, n_ctx %d:"
          % (args.count, args.baseline_count, N_CTX))
    print("  start to first answer, median: ours %.2f s, baseline %.2f s (ratio %.2f); max ours %.2f s"
          % (o["start_median_s"], b["start_median_s"], result["ratio_start_median"], o["start_max_s"]))
    print("  memory of all at once: ours PSS %.0f MiB (RSS sum %.0f MiB, MemAvailable -%.0f MiB); "
          "baseline PSS %.0f MiB (RSS sum %.0f MiB, MemAvailable -%.0f MiB)"
          % (o["pss_mib"], o["rss_mib"], o["mem_available_drop_mib"], b["pss_mib"], b["rss_mib"],
             b["mem_available_drop_mib"]))
    print("  PSS per engine: ours %.1f MiB, baseline %.1f MiB (ratio %.2f)"
          % (per_ours, per_base, result["ratio_pss_per_engine"]))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
