"""Benchmark of llm_health's load mode (issue 4) against the sandbox engine's own counts. Not a test;
it only prints figures (and writes them as JSON with --json).

Starts a sandbox of its own ($SANDBOX_DIR, default .sandbox-healthbench, ports 57xxx; override with
BENCH_SANDBOX_*; no class namespaces), whose engine is llama.cpp (llama-cpp-python's server) serving
SmolLM2-135M-Instruct on the CPU. Then, alternating, --runs times:

  * llm_health: the module process exactly as Ansible runs it (python <module> <args file>), with
    base_url = the engine, requests = --requests, concurrency = --concurrency (streamed completions);
  * baseline: a plain client in this script (urllib, a thread pool of the same size) sending the same
    number of the same chat completions without streaming, so that the server reports ``usage``.

What the server itself counts, which llm_health's figures are compared with:

  * requests: the engine's own access log (uvicorn, one line per answered request, in
    $SANDBOX_DIR/logs/engine.log). During an llm_health run the server answers its 2 probe requests
    (chat + stream) plus the load requests.
  * tokens: llama-cpp-python sends no ``usage`` in a stream (it ignores stream_options) and has no
    /metrics, so llm_health counts content chunks. The server's own token count is the
    ``usage.completion_tokens`` it reports for the same requests sent without streaming (the baseline
    client; temperature 0, so the answers are the same).

Run: .venv/bin/python bench/llm_health_bench.py [--runs 5] [--requests 20] [--concurrency 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {
    "SANDBOX_DIR": str(REPO / ".sandbox-healthbench"), "SANDBOX_API_PORT": "57443", "SANDBOX_ETCD_PORT": "57379",
    "SANDBOX_ETCD_PEER_PORT": "57380", "SANDBOX_KWOK_PORT": "57247", "SANDBOX_ENGINE_PORT": "57800",
    "SANDBOX_WEBUI": "0",
}
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUESTION = "What is the capital of Germany? Answer in one word."
PROBE_POSTS = 2  # llm_health's own checks before the load: one chat completion, one streamed
ANSWERED = re.compile(r'"POST /v1/chat/completions HTTP/1\.[01]" (\d{3})')


def env():
    out = dict(os.environ)
    for key, value in ENV.items():
        out[key] = os.environ.get("BENCH_" + key, value)
    out.update({"SANDBOX_CLASS_SIZE": "0", "PATH": "%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", ""))})
    return out


ENVIRON = env()
SANDBOX = pathlib.Path(ENVIRON["SANDBOX_DIR"])
BASE_URL = "http://127.0.0.1:%s" % ENVIRON["SANDBOX_ENGINE_PORT"]


def server_posts():
    """(answered with 200, answered otherwise) chat completions in the engine's access log so far."""
    ok = other = 0
    with open(SANDBOX / "logs" / "engine.log", encoding="utf-8", errors="replace") as log:
        for line in log:
            match = ANSWERED.search(line)
            if match:
                if match.group(1) == "200":
                    ok += 1
                else:
                    other += 1
    return ok, other


def settled_posts(expected_ok, timeout=15.0):
    """The access-log counts once the log has caught up with ``expected_ok`` (or stopped growing)."""
    deadline = time.monotonic() + timeout
    last = server_posts()
    while last[0] < expected_ok and time.monotonic() < deadline:
        time.sleep(0.2)
        last = server_posts()
    time.sleep(0.3)
    return server_posts()


def run_module(args):
    module = str(REPO / "plugins" / "modules" / "llm_health.py")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as argsfile:
        json.dump({"ANSIBLE_MODULE_ARGS": {"base_url": BASE_URL, "model": MODEL, "question": QUESTION,
                                           "max_tokens": args.max_tokens, "requests": args.requests,
                                           "concurrency": args.concurrency, "timeout": 300}}, argsfile)
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, module, argsfile.name], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO / ".cache" / "collections")),
                              timeout=1800, check=False)
        wall = time.monotonic() - start
    finally:
        os.unlink(argsfile.name)
    try:
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        raise SystemExit("llm_health printed no JSON (rc %d): %s" % (proc.returncode, (proc.stdout + proc.stderr)[-2000:]))
    if result.get("failed"):
        raise SystemExit("llm_health failed: %s" % result.get("msg"))
    return wall, result


def one_request(max_tokens):
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": QUESTION}],
                       "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(BASE_URL + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read().decode())["usage"]["completion_tokens"]


def run_baseline(args):
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        tokens = list(pool.map(lambda _i: one_request(args.max_tokens), range(args.requests)))
    return time.monotonic() - start, tokens


def start_sandbox():
    up = subprocess.run(["bash", "tests/cluster/sandbox.sh", "up"], cwd=str(REPO), env=ENVIRON, check=False,
                        capture_output=True, text=True)
    if up.returncode != 0:
        sys.exit("sandbox up failed: %s" % (up.stdout[-2000:] + up.stderr[-2000:]))


def stop_sandbox():
    subprocess.run(["bash", "tests/cluster/sandbox.sh", "down"], cwd=str(REPO), env=ENVIRON, check=False,
                   capture_output=True)


def measure(args):
    one_request(args.max_tokens)  # warm-up (model load, caches), not counted
    runs = []
    for i in range(args.runs):
        ok0, other0 = settled_posts(0)
        wall, result = run_module(args)
        load = result["load"]
        ok1, other1 = settled_posts(ok0 + PROBE_POSTS + load["completed"])
        base_wall, base_tokens = run_baseline(args)
        ok2, other2 = settled_posts(ok1 + args.requests)
        run = {
            "module_wall_s": wall,
            "llm_health": {k: load[k] for k in ("requests", "concurrency", "completed", "failed", "duration_s",
                                                "requests_per_s", "output_tokens", "tokens_source",
                                                "output_tokens_per_s")},
            "llm_health_latency_p50_s": load["latency_s"]["p50"],
            "server_answered_during_llm_health": ok1 - ok0,
            "server_answered_load": ok1 - ok0 - PROBE_POSTS,
            "server_other_status_during_llm_health": other1 - other0,
            "baseline": {"requests": args.requests, "duration_s": base_wall, "completed": len(base_tokens),
                         "requests_per_s": len(base_tokens) / base_wall,
                         "server_completion_tokens": sum(base_tokens),
                         "server_tokens_per_s": sum(base_tokens) / base_wall,
                         "server_answered": ok2 - ok1},
        }
        runs.append(run)
        print("run %d: llm_health %d/%d requests in %.2fs, %d tokens (%s), %.1f tokens/s; server answered %d "
              "(+%d probes); baseline %.2fs, server usage %d tokens, %.1f tokens/s"
              % (i + 1, load["completed"], args.requests, load["duration_s"], load["output_tokens"],
                 load["tokens_source"], load["output_tokens_per_s"], run["server_answered_load"], PROBE_POSTS,
                 base_wall, sum(base_tokens), run["baseline"]["server_tokens_per_s"]), flush=True)
    return runs


def summary(runs):
    def med(get):
        return statistics.median(get(r) for r in runs)

    return {
        "llm_health_tokens_per_s": med(lambda r: r["llm_health"]["output_tokens_per_s"]),
        "baseline_tokens_per_s": med(lambda r: r["baseline"]["server_tokens_per_s"]),
        "llm_health_requests_per_s": med(lambda r: r["llm_health"]["requests_per_s"]),
        "baseline_requests_per_s": med(lambda r: r["baseline"]["requests_per_s"]),
        "llm_health_output_tokens": med(lambda r: r["llm_health"]["output_tokens"]),
        "server_completion_tokens": med(lambda r: r["baseline"]["server_completion_tokens"]),
        "requests_match": all(r["llm_health"]["completed"] == r["server_answered_load"] for r in runs),
        "tokens_match": all(r["llm_health"]["output_tokens"] == r["baseline"]["server_completion_tokens"]
                            for r in runs),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    t_all = time.monotonic()
    start_sandbox()
    try:
        runs = measure(args)
    finally:
        if not args.keep:
            stop_sandbox()
    figures = summary(runs)
    print()
    print("medians of %d runs (%d requests, concurrency %d, max_tokens %d):" % (
        args.runs, args.requests, args.concurrency, args.max_tokens))
    print("  llm_health %.1f tokens/s, %.2f requests/s; baseline client %.1f tokens/s, %.2f requests/s (ratio %.2f)"
          % (figures["llm_health_tokens_per_s"], figures["llm_health_requests_per_s"],
             figures["baseline_tokens_per_s"], figures["baseline_requests_per_s"],
             figures["llm_health_tokens_per_s"] / figures["baseline_tokens_per_s"]))
    print("  requests counted by llm_health = the server's access log in every run: %s" % figures["requests_match"])
    print("  tokens counted by llm_health (%s) = the server's usage for the same requests in every run: %s"
          % ("+".join(sorted(set(r["llm_health"]["tokens_source"] for r in runs))), figures["tokens_match"]))
    if args.json:
        out = {"benchmark": "llm_health", "params": vars(args), "runs": runs, "summary": figures,
               "wall_s": time.monotonic() - t_all, "loadavg": os.getloadavg()}
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
