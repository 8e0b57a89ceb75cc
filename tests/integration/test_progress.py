"""Long waits show progress: a deploy whose engine pod pulls its image for 20 s and loads its model for
45 s (the sandbox's kwok stages, annotations sandbox.haw-icc.de/pull-for and ready-after) prints a line about every 15 s with
the elapsed time and the phase read from the API (the pod, its Events, its last log line), then the
time to ready."""

from __future__ import annotations

import re

from sandboxlib import run_playbook

NS = "wcls001-default"


def test_a_60_s_model_load_prints_progress_lines_with_their_phase(sandbox):  # pylint: disable=unused-argument
    try:
        # The sandbox's kwok stages play what a kubelet shows: a Pulling event with the container waiting
        # (20 s, sandbox.haw-icc.de/pull-for), then a Started event with the container running but not
        # ready while the model loads (45 s, ready-after), then Ready.
        run = run_playbook("playbooks/deploy.yml", limit=NS, env={"ANSIBLE_STDOUT_CALLBACK": "default"},
                           extra_vars={"icc_webui": False,
                                       "vllm_pod_annotations": {"sandbox.haw-icc.de/pull-for": "20s",
                                                                "sandbox.haw-icc.de/ready-after": "45s"}})
        assert run.rc == 0, run.stdout[-4000:]
        lines = [ln.strip() for ln in run.stdout.splitlines()
                 if re.match(r"^  %s: \d+(m\d\d)?s vLLM vllm: " % NS, ln)]
        assert len(lines) >= 3, run.stdout[-4000:]
        # The phases read from the API: the pull first, then the load with the engine's last log line.
        phases = [re.sub(r"^.*? vLLM vllm: ", "", ln) for ln in lines]
        assert re.match(r"^pulling the image on gpu-v100-\d$", phases[0]), phases
        loading = [p for p in phases if p.startswith("loading the model on gpu-v100-")]
        assert len(loading) >= 2 and phases[-1] in loading, phases
        assert all(re.match(r"^(pulling the image|loading the model) on gpu-v100-\d", p) for p in phases), phases
        # one line about every 15 s: the elapsed times grow by 15 s or more
        times = [int(m.group(1) or 0) * 60 + int(m.group(2)) for m in
                 (re.match(r"^%s: (?:(\d+)m)?(\d+)s " % NS, ln) for ln in lines)]
        assert all(b - a >= 15 for a, b in zip(times, times[1:])), lines
        assert re.search(r"^  %s: vLLM vllm ready after (1m\d\ds)$" % NS, run.stdout, re.M), run.stdout[-3000:]
        assert "FAILED - RETRYING" not in run.stdout
    finally:
        gone = run_playbook("playbooks/cleanup.yml", limit=NS, extra_vars={"confirm": True, "purge": True})
        assert gone.rc == 0, gone.stdout[-3000:]
