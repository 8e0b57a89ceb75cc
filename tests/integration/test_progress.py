"""Long waits show progress: a deploy whose engine pod stays un-ready for 60 s (a model that loads
that long: the sandbox's kwok stage sandbox.haw-icc.de/ready-after) prints a line about every 15 s with
the elapsed time and the phase read from the API (the pod, its Events, its last log line), then the
time to ready."""

from __future__ import annotations

import re

from sandboxlib import run_playbook

NS = "wcls001-default"


def test_a_60_s_model_load_prints_progress_lines_with_their_phase(sandbox):  # pylint: disable=unused-argument
    try:
        run = run_playbook("playbooks/deploy.yml", limit=NS, env={"ANSIBLE_STDOUT_CALLBACK": "default"},
                           extra_vars={"icc_webui": False,
                                       "vllm_pod_annotations": {"sandbox.haw-icc.de/ready-after": "60s"}})
        assert run.rc == 0, run.stdout[-4000:]
        lines = [ln.strip() for ln in run.stdout.splitlines()
                 if re.match(r"^  %s: \d+(m\d\d)?s vLLM vllm: " % NS, ln)]
        assert len(lines) >= 3, run.stdout[-4000:]
        # The phase the API shows: kwok's ready-after stage keeps the pod scheduled with no container status
        # until it is ready (a kubelet would show the container running but not ready: "loading the model",
        # and Pulling events: tests/unit/test_rollout_progress.py has those phases).
        assert all(re.search(r"vLLM vllm: scheduled on gpu-v100-\d, creating the container$", ln) for ln in lines), lines
        # one line about every 15 s: the elapsed times grow by 15 s or more
        times = [int(m.group(1) or 0) * 60 + int(m.group(2)) for m in
                 (re.match(r"^%s: (?:(\d+)m)?(\d+)s " % NS, ln) for ln in lines)]
        assert all(b - a >= 15 for a, b in zip(times, times[1:])), lines
        assert re.search(r"^  %s: vLLM vllm ready after (1m\d\ds)$" % NS, run.stdout, re.M), run.stdout[-3000:]
        assert "FAILED - RETRYING" not in run.stdout
    finally:
        gone = run_playbook("playbooks/cleanup.yml", limit=NS, extra_vars={"confirm": True, "purge": True})
        assert gone.rc == 0, gone.stdout[-3000:]
