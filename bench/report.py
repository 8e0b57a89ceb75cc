"""Benchmark report (issue 7): runs the benchmarks of issues 3, 4 and 5 and writes docs/benchmarks.md
(a Markdown table of medians, baselines, ratios and targets, plus the machine's facts) and plots
docs/images/bench_*.png. Not a test; never run by `make test`.

  * gpu_capacity (issue 3): bench/gpu_capacity_bench.py in a sandbox of its own (.sandbox-bench, ports
    61xxx, no engine), 200 extra nodes and 10,000 pods, against `kubectl describe nodes`;
  * deploy (issue 5): bench/class_bench.py (its own sandbox, .sandbox-classbench, ports 59xxx): single
    deploy against `kubectl apply` + `rollout status`, its re-run, and 30 namespaces;
  * llm_health load (issue 4): bench/llm_health_bench.py (its own sandbox, .sandbox-healthbench, ports
    57xxx): llm_health's load figures against the engine's own counts and a plain client.

Each benchmark writes its figures as JSON (--json); this script keeps them in <out>/bench-raw/benchmarks.json
(docs/bench-raw is not packaged), so `--render-only docs/bench-raw/benchmarks.json` redraws the table and
plots without running anything. The benchmarks' own output goes to .cache/bench-report[-quick].log.
`--quick` runs fewer and smaller runs, labels every output QUICK, and writes to .cache/bench-report-quick
unless --out-dir is given. The default (full) run takes about 40-60 minutes on a 2-core machine.

Run: .venv/bin/python bench/report.py [--quick] [--out-dir DIR] [--only gpu_capacity,class,llm_health]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
BENCHMARKS = ("gpu_capacity", "class", "llm_health")

# Sizes of the full run (the default) and of --quick.
FULL = {
    "gpu_capacity": {"nodes": 200, "pods": 10000, "runs": 7},
    "class": {"runs": 3, "class_runs": 1, "class_size": 30},
    "llm_health": {"runs": 5, "requests": 20, "concurrency": 4, "max_tokens": 32},
}
QUICK = {
    "gpu_capacity": {"nodes": 40, "pods": 2000, "runs": 3},
    "class": {"runs": 1, "class_runs": 1, "class_size": 3},
    "llm_health": {"runs": 3, "requests": 6, "concurrency": 2, "max_tokens": 32},
}
# The sandbox of the gpu_capacity benchmark (the script expects a running one; the others start their own).
GPU_SANDBOX = {
    "SANDBOX_DIR": str(REPO / ".sandbox-bench"), "SANDBOX_API_PORT": "61443", "SANDBOX_ETCD_PORT": "61379",
    "SANDBOX_ETCD_PEER_PORT": "61380", "SANDBOX_KWOK_PORT": "61247", "SANDBOX_ENGINE_PORT": "61000",
    "SANDBOX_WEBUI": "0", "SANDBOX_ENGINE": "0", "SANDBOX_CLASS_SIZE": "0",
}


# --- pure helpers (unit-tested in tests/unit/test_bench_report.py) ---------------------------------

def median(values):
    """Median of the numbers in ``values`` (None entries ignored); None if there is none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(value, baseline):
    """value / baseline, or None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def meets(value, op, limit):
    """Whether ``value op limit`` holds (op one of <, <=, >=, >, ==); None when value is None."""
    if value is None:
        return None
    return {"<": value < limit, "<=": value <= limit, ">=": value >= limit, ">": value > limit,
            "==": value == limit}[op]


def fmt(value, unit="", digits=2):
    if value is None:
        return "n/a"
    if unit == "%":
        return "%.0f %%" % (100 * value)
    if unit == "x":
        return "%.*fx" % (digits, value)
    text = "%.*f" % (digits, value)
    return text + (" " + unit if unit else "")


def row(measure, value, unit, runs, baseline_name="", baseline=None, ratio_text="", target="", met=None, note="",
        digits=2):
    """One line of the table; ``met`` True/False/None (no target)."""
    return {"measure": measure, "median": fmt(value, unit, digits), "runs": runs, "baseline": baseline_name,
            "baseline_median": fmt(baseline, unit, digits) if baseline_name else "", "ratio": ratio_text,
            "target": target, "met": met, "note": note}


def sized(met, actual, wanted):
    """A verdict only counts at the size the target is set for; ``met`` or (None, note)."""
    if actual == wanted:
        return met, ""
    return None, "not judged: the target is for %s" % wanted


def gpu_capacity_rows(data):
    p = data["params"]
    wall, base = median(data["module_wall_s"]), median(data["kubectl_wall_s"])
    rss, base_rss = median(data["module_rss_mb"]), median(data["kubectl_rss_mb"])
    speed = ratio(base, wall)
    size = "%d nodes / %d pods" % (p["nodes"], p["pods"])
    n = len(data["module_wall_s"])
    out = []
    for measure, value, unit, bname, bvalue, ratio_text, target, met, digits in (
            ("gpu_capacity wall time, %s" % size, wall, "s", "`kubectl describe nodes`", base,
             "%s faster" % fmt(speed, "x", 1), "< 3 s", meets(wall, "<", 3), 2),
            ("gpu_capacity speed-up over `kubectl describe nodes`", speed, "x", "", None,
             fmt(speed, "x", 1), ">= 5x", meets(speed, ">=", 5), 1),
            ("gpu_capacity peak RSS, %s" % size, rss, "MB", "`kubectl describe nodes`", base_rss,
             fmt(ratio(rss, base_rss), "x"), "< 300 MB", meets(rss, "<", 300), 0)):
        met, note = sized(met, size, "200 nodes / 10000 pods")
        out.append(row(measure, value, unit, n, bname, bvalue, ratio_text, target, met, note, digits=digits))
    return out


def class_rows(data):
    f = data["runs"]
    size = data["params"]["class_size"]
    single, rerun, kube = median(f["single"]), median(f["single_rerun"]), median(f["kubectl"])
    klass, krerun = median(f["class"]), median(f["class_rerun"])
    r_single, r_rerun, r_class, r_krerun = ratio(single, kube), ratio(rerun, single), ratio(klass, single), ratio(krerun, klass)
    rerun_zero = not any(f["single_rerun_changed"])
    krerun_zero = not any(f["class_rerun_changed"])
    rows = [
        row("single deploy (1 namespace)", single, "s", len(f["single"]), "`kubectl apply` + `rollout status`", kube,
            "%s kubectl" % fmt(r_single, "x"), "<= 2x", meets(r_single, "<=", 2), digits=1),
        row("single re-run", rerun, "s", len(f["single_rerun"]), "single deploy", single,
            "%s of the first" % fmt(r_rerun, "%"), "<= 60 %, changed=0",
            None if r_rerun is None else (r_rerun <= 0.6 and rerun_zero),
            "changed=%s" % f["single_rerun_changed"], digits=1),
    ]
    if f["class"]:
        met, note = sized(meets(r_class, "<=", 4), "%d namespaces" % size, "30 namespaces")
        rows += [
            row("%d namespaces deploy" % size, klass, "s", len(f["class"]), "single deploy", single,
                "%s single" % fmt(r_class, "x"), "<= 4x (30 namespaces)", met,
                ("changed=%s; %s" % (f["class_changed"], note)).rstrip("; "), digits=1),
            row("%d namespaces re-run" % size, krerun, "s", len(f["class_rerun"]), "%d namespaces deploy" % size, klass,
                "%s of the first" % fmt(r_krerun, "%"), "<= 60 %, changed=0",
                None if r_krerun is None else (r_krerun <= 0.6 and krerun_zero),
                "changed=%s" % f["class_rerun_changed"], digits=1),
            row("%d namespaces status" % size, median(f["status"]), "s", len(f["status"]), digits=1),
            row("%d namespaces cleanup" % size, median(f["cleanup"]), "s", len(f["cleanup"]), digits=1),
        ]
    return rows


def llm_health_rows(data):
    runs = data["runs"]
    p = data["params"]
    n = len(runs)
    completed = median([r["llm_health"]["completed"] for r in runs])
    answered = median([r["server_answered_load"] for r in runs])
    tokens = median([r["llm_health"]["output_tokens"] for r in runs])
    usage = median([r["baseline"]["server_completion_tokens"] for r in runs])
    tps, base_tps = median([r["llm_health"]["output_tokens_per_s"] for r in runs]), \
        median([r["baseline"]["server_tokens_per_s"] for r in runs])
    rps, base_rps = median([r["llm_health"]["requests_per_s"] for r in runs]), \
        median([r["baseline"]["requests_per_s"] for r in runs])
    req_equal = all(r["llm_health"]["completed"] == r["server_answered_load"] for r in runs)
    tok_equal = all(r["llm_health"]["output_tokens"] == r["baseline"]["server_completion_tokens"] for r in runs)
    sources = "+".join(sorted(set(r["llm_health"]["tokens_source"] for r in runs)))
    load = "%d requests, concurrency %d" % (p["requests"], p["concurrency"])
    return [
        row("llm_health load: requests completed (%s)" % load, completed, "", n, "server's access log", answered,
            fmt(ratio(completed, answered)), "= server's count, every run", req_equal, digits=0),
        row("llm_health load: output tokens (counted from %s)" % sources, tokens, "", n,
            "server's `usage.completion_tokens`", usage, fmt(ratio(tokens, usage)), "= server's count, every run",
            tok_equal, "same requests without streaming", digits=0),
        row("llm_health load: output tokens/s", tps, "", n, "plain client, server's usage / wall time", base_tps,
            fmt(ratio(tps, base_tps)), "none in the issues", None, digits=1),
        row("llm_health load: requests/s", rps, "", n, "plain client", base_rps, fmt(ratio(rps, base_rps)),
            "none in the issues", None),
    ]


def verdict(met):
    return "" if met is None else ("met" if met else "**missed**")


def markdown_table(rows):
    head = ["measure", "median", "runs", "baseline", "baseline median", "ratio", "target (issues)", "met", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["measure"], r["median"], str(r["runs"]), r["baseline"], r["baseline_median"], r["ratio"],
                 r["target"], verdict(r["met"]), r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") if c else "" for c in cells) + " |")
    return "\n".join(lines)


def render(report, plots=()):
    """The whole Markdown page of a report dict (see main)."""
    quick = report["quick"]
    facts = report["facts"]
    out = ["# Benchmarks" + (" (QUICK RUN: fewer, smaller runs; not the real figures)" if quick else ""), ""]
    if quick:
        out += ["> **Quick run** (`bench/report.py --quick`): fewer runs and smaller sizes than the issues ask",
                "> for. These figures only show that the report works; the real figures come from",
                "> `make bench-report`.", ""]
    out += ["Written by `bench/report.py` (`make bench-report`); never by `make test`. Every figure is the",
            "median of the runs counted in the `runs` column, and each ratio is taken between medians measured",
            "in the same run of the script, alternating with the baseline where the benchmark allows it.", ""]
    rows = []
    for name in BENCHMARKS:
        rows += report["rows"].get(name, [])
    out += [markdown_table(rows), ""]
    met = [r for r in rows if r["met"] is not None]
    out += ["Targets met: %d of %d." % (sum(1 for r in met if r["met"]), len(met)), ""]
    out += ["## Machine", "",
            "| fact | value |", "|---|---|"]
    for key in ("date", "git commit", "nproc", "load average at start", "load average at end", "python",
                "system", "wall time", "mode"):
        out.append("| %s | %s |" % (key, facts.get(key, "n/a")))
    out.append("")
    out += ["## Parameters", ""]
    for name in BENCHMARKS:
        if name in report["params"]:
            out.append("- %s: %s" % (name, ", ".join("%s=%s" % kv for kv in sorted(report["params"][name].items()))))
    out.append("")
    if report.get("errors"):
        out += ["## Benchmarks that failed", ""]
        out += ["- %s: %s" % (k, v) for k, v in sorted(report["errors"].items())]
        out.append("")
    out += ["## What is compared", "", NOTES, ""]
    if plots:
        out += ["## Plots", ""]
        out += ["![%s](images/%s)" % (p[:-4], p) for p in plots]
        out.append("")
    return "\n".join(out)


NOTES = """\
- **gpu_capacity** (issue 3): the module process exactly as Ansible runs it, against `kubectl describe
  nodes` (what a person types to get the same answer), alternating, on a sandbox filled with extra
  nodes and pods. Wall time and peak RSS from `wait4`.
- **deploy** (issue 5): `playbooks/deploy.yml` for one namespace from empty (preflight, engine, WebUI,
  a real question, summary) against `kubectl apply -f` + `kubectl rollout status` of the same rendered
  manifests; its re-run (must report `changed=0`); the class of namespaces with the default forks.
  In the sandbox kwok makes pods Ready at once and no image is pulled or model loaded, so the kubectl
  baseline is only API round trips, while on the ICC both sides wait minutes for the pull and the
  model load (see bench/README.md).
- **llm_health load** (issue 4): llm_health's load mode (streamed chat completions) against the sandbox
  engine, llama.cpp (llama-cpp-python's server). That server has no `/metrics` and sends no `usage` in a
  stream, so the server's own counts are: requests from its access log (the module's 2 probe requests
  subtracted), and tokens from the `usage.completion_tokens` it reports for the same requests sent
  without streaming by a plain client in the same script (temperature 0, so the same answers). That
  plain client is also the throughput baseline; the issues set no throughput target."""


# --- running the benchmarks -------------------------------------------------------------------------

def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO), capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=str(REPO),
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def loadavg():
    return " ".join("%.2f" % x for x in os.getloadavg())


def run_script(script, args, json_file, env=None, log=None):
    cmd = [PY, str(BENCH / script)] + args + ["--json", str(json_file)]
    print("=== %s" % " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, check=False, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not json_file.exists():
        raise RuntimeError("%s exited with %d" % (script, proc.returncode))
    return json.loads(json_file.read_text())


def run_gpu_capacity(p, tmp, log):
    env = dict(os.environ, **GPU_SANDBOX)
    up = subprocess.run(["bash", "tests/cluster/sandbox.sh", "up"], cwd=str(REPO), env=env, check=False,
                        capture_output=True, text=True)
    if up.returncode != 0:
        raise RuntimeError("sandbox up failed: %s" % (up.stdout + up.stderr)[-1000:])
    try:
        return run_script("gpu_capacity_bench.py", ["--nodes", str(p["nodes"]), "--pods", str(p["pods"]),
                                                    "--runs", str(p["runs"])], tmp / "gpu_capacity.json", env, log)
    finally:
        subprocess.run(["bash", "tests/cluster/sandbox.sh", "down"], cwd=str(REPO), env=env, check=False,
                       capture_output=True)


def run_class(p, tmp, log):
    return run_script("class_bench.py", ["--runs", str(p["runs"]), "--class-runs", str(p["class_runs"]),
                                         "--class-size", str(p["class_size"])], tmp / "class.json", log=log)


def run_llm_health(p, tmp, log):
    return run_script("llm_health_bench.py", ["--runs", str(p["runs"]), "--requests", str(p["requests"]),
                                              "--concurrency", str(p["concurrency"]),
                                              "--max-tokens", str(p["max_tokens"])], tmp / "llm_health.json", log=log)


RUNNERS = {"gpu_capacity": (run_gpu_capacity, gpu_capacity_rows), "class": (run_class, class_rows),
           "llm_health": (run_llm_health, llm_health_rows)}


# --- plots ------------------------------------------------------------------------------------------

def _points(ax, x, values, color):
    ax.scatter([x] * len(values), values, color=color, s=18, zorder=3)


def plot_all(report, images, quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tag = " (QUICK RUN)" if quick else ""
    written = []
    data = report["data"]
    if "gpu_capacity" in data:
        d = data["gpu_capacity"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
        for ax, key, unit in ((a1, "wall_s", "s"), (a2, "rss_mb", "MB")):
            mod, kub = d["module_" + key], d["kubectl_" + key]
            ax.bar([0, 1], [median(mod), median(kub)], color=["#2b7bba", "#bbbbbb"])
            _points(ax, 0, mod, "#0b3b6a")
            _points(ax, 1, kub, "#555555")
            ax.set_xticks([0, 1], ["gpu_capacity", "kubectl describe\nnodes"])
            ax.set_ylabel(unit)
        a1.axhline(3, color="#c0392b", linestyle="--", linewidth=1, label="target < 3 s")
        a1.set_ylim(0, 1.15 * max(d["module_wall_s"] + d["kubectl_wall_s"] + [3]))
        a2.set_ylim(0, 1.15 * max(d["module_rss_mb"] + d["kubectl_rss_mb"] + [300]))
        a2.axhline(300, color="#c0392b", linestyle="--", linewidth=1, label="target < 300 MB")
        a1.legend(fontsize=8)
        a2.legend(fontsize=8)
        a1.set_title("wall time (median bar, runs as dots)", fontsize=9)
        a2.set_title("peak RSS", fontsize=9)
        fig.suptitle("gpu_capacity, %d nodes / %d pods%s" % (d["params"]["nodes"], d["params"]["pods"], tag))
        written.append(_save(fig, images, "bench_gpu_capacity.png"))
    if "class" in data:
        f = data["class"]["runs"]
        size = data["class"]["params"]["class_size"]
        keys = [("kubectl", "kubectl apply\n+ rollout"), ("single", "single\ndeploy"), ("single_rerun", "single\nre-run"),
                ("class", "%d ns\ndeploy" % size), ("class_rerun", "%d ns\nre-run" % size)]
        keys = [(k, label) for k, label in keys if f.get(k)]
        fig, ax = plt.subplots(figsize=(8, 4))
        bars = ax.bar(range(len(keys)), [median(f[k]) for k, _l in keys], color="#2b7bba")
        ax.bar_label(bars, fmt="%.1f s", fontsize=8)
        for i, (k, _l) in enumerate(keys):
            _points(ax, i, f[k], "#0b3b6a")
        ax.set_xticks(range(len(keys)), [label for _k, label in keys])
        ax.set_yscale("log")
        ax.set_ylabel("seconds (log scale)")
        ax.set_title("deploy: playbook vs kubectl, re-runs, class%s" % tag)
        written.append(_save(fig, images, "bench_class.png"))
    if "llm_health" in data:
        runs = data["llm_health"]["runs"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
        xs = range(1, len(runs) + 1)
        a1.plot(xs, [r["llm_health"]["output_tokens_per_s"] for r in runs], "o-", label="llm_health (chunks)")
        a1.plot(xs, [r["baseline"]["server_tokens_per_s"] for r in runs], "s--", label="plain client (server usage)")
        a1.set_xlabel("run")
        a1.set_xticks(list(xs))
        a1.set_ylim(0, 1.3 * max([r["llm_health"]["output_tokens_per_s"] for r in runs]
                                 + [r["baseline"]["server_tokens_per_s"] for r in runs]))
        a1.set_ylabel("output tokens/s")
        a1.legend(fontsize=8, loc="lower right")
        a1.set_title("throughput", fontsize=9)
        width = 0.35
        a2.bar([x - width / 2 for x in xs], [r["llm_health"]["output_tokens"] for r in runs], width,
               label="tokens counted by llm_health")
        a2.bar([x + width / 2 for x in xs], [r["baseline"]["server_completion_tokens"] for r in runs], width,
               label="server's usage.completion_tokens")
        a2.set_xlabel("run")
        a2.set_xticks(list(xs))
        a2.set_ylim(0, 1.4 * max([r["llm_health"]["output_tokens"] for r in runs]
                                 + [r["baseline"]["server_completion_tokens"] for r in runs]))
        a2.set_ylabel("output tokens")
        a2.legend(fontsize=8)
        a2.set_title("token counts", fontsize=9)
        fig.suptitle("llm_health load vs the server's counts%s" % tag)
        written.append(_save(fig, images, "bench_llm_health.png"))
    return written


def _save(fig, images, name):
    fig.tight_layout()
    fig.savefig(str(images / name), dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return name


# --- main ---------------------------------------------------------------------------------------------

def build_rows(report):
    report["rows"] = {}
    for name, data in report["data"].items():
        report["rows"][name] = RUNNERS[name][1](data)
    return report


def write(report, out_dir):
    images, raw = out_dir / "images", out_dir / "bench-raw"
    images.mkdir(parents=True, exist_ok=True)
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "benchmarks.json").write_text(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    plots = plot_all(report, images, report["quick"])
    (out_dir / "benchmarks.md").write_text(render(report, plots))
    print("wrote %s, %s and %s" % (out_dir / "benchmarks.md", raw / "benchmarks.json",
                                   ", ".join(str(images / p) for p in plots)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs; every output is labelled QUICK")
    parser.add_argument("--out-dir", help="where benchmarks.md, images/ and bench-raw/ go "
                        "(default: docs/, or .cache/bench-report-quick with --quick)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of %s" % ", ".join(BENCHMARKS))
    parser.add_argument("--render-only", metavar="JSON", help="redraw from a benchmarks.json; runs nothing")
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out_dir) if args.out_dir else (
        REPO / ".cache" / "bench-report-quick" if args.quick else REPO / "docs")
    if args.render_only:
        report = json.loads(pathlib.Path(args.render_only).read_text())
        write(build_rows(report), out_dir)
        return 0
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error("--only: unknown benchmark(s) %s; use %s" % (", ".join(unknown), ", ".join(BENCHMARKS)))
    sizes = QUICK if args.quick else FULL
    start = time.monotonic()
    facts = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "git commit": git_commit(), "nproc": os.cpu_count(), "load average at start": loadavg(),
             "python": platform.python_version(), "system": "%s %s" % (platform.system(), platform.release()),
             "mode": "QUICK (--quick)" if args.quick else "full"}
    report = {"quick": args.quick, "facts": facts, "params": {}, "data": {}, "errors": {}}
    logfile = REPO / ".cache" / ("bench-report-quick.log" if args.quick else "bench-report.log")
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, open(logfile, "w") as log:
        print("benchmark output goes to %s" % logfile, flush=True)
        for name in only:
            report["params"][name] = sizes[name]
            t0 = time.monotonic()
            try:
                report["data"][name] = RUNNERS[name][0](sizes[name], pathlib.Path(tmp), log)
            except (RuntimeError, OSError, ValueError) as exc:
                report["errors"][name] = str(exc)
                print("%s FAILED: %s (see %s)" % (name, exc, logfile), flush=True)
                continue
            print("%s done in %.0fs" % (name, time.monotonic() - t0), flush=True)
    facts["load average at end"] = loadavg()
    facts["wall time"] = "%.0f s" % (time.monotonic() - start)
    write(build_rows(report), out_dir)
    print()
    print(markdown_table([r for name in BENCHMARKS for r in report["rows"].get(name, [])]))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
