"""vLLM 0.8.5's own start-up checks on the sandbox's vLLM pods (tests/cluster/pod_runner.py).

A deployed engine pod has passed them before it became Ready. A Deployment forced past the preflight
(edited by hand, as a user might: 2 GPUs for SmolLM2's 9 attention heads; service links switched back
on) gets a pod that vLLM's own code refuses: it crash-loops as on a node, and rollout_status,
status.yml and logs.yml report vLLM's own message. A deploy afterwards puts the working settings back.
"""

from __future__ import annotations

import json

from sandboxlib import (MODEL, expect_vllm_refusals, live_pods, remove_collection, run_playbook, vllm_checks,
                        vllm_checks_on, wait_until)

NS = "wcls014-default"
HEADS_ERROR = "ValueError: Total number of attention heads (9) must be divisible by tensor parallel size (2)."

ROLLOUT_PLAY = """
- name: Wait for the engine
  hosts: all
  gather_facts: false
  tasks:
    - name: Wait
      haw_icc.llm.rollout_status:
        kubeconfig: "{{ icc_kubeconfig }}"
        namespace: "{{ icc_namespace }}"
        name: vllm
        selector: app.kubernetes.io/name=vllm,app.kubernetes.io/instance=vllm
        timeout: 60
"""


def crash_looping(sandbox):
    """The engine pod whose container waits in CrashLoopBackOff, or None."""
    for pod in live_pods(sandbox, NS):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
                return pod, cs
    return None


def force(sandbox, patch):
    """Edit the engine Deployment as the student, past every check of the collection."""
    sandbox.kubectl("-n", NS, "patch", "deployment", "vllm", "--type=json", "-p", json.dumps(patch),
                    kubeconfig=sandbox.kubeconfig(NS))


def test_pods_vllm_refuses_crash_loop_with_vllms_own_message_and_a_deploy_repairs_them(sandbox, tmp_path):
    assert vllm_checks_on(), "start the sandbox with SANDBOX_VLLM_CHECKS=1 (make test does)"
    expect_vllm_refusals(NS)
    remove_collection(sandbox, NS)
    try:
        run = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars={"icc_webui": False})
        assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
        [pod] = live_pods(sandbox, NS)
        assert pod["metadata"]["annotations"]["sandbox.haw-icc.de/engine"] == "ready"
        [mine] = [c for c in vllm_checks() if c["pod"] == pod["metadata"]["name"]]
        assert mine["ok"] and "tensor parallel 1 against 9 attention heads" in mine["checks"], mine

        # 2 GPUs for 9 attention heads, past the preflight.
        args = pod["spec"]["containers"][0]["args"]
        force(sandbox, [
            {"op": "replace", "path": "/spec/template/spec/containers/0/args/%d" % (args.index("--tensor-parallel-size") + 1),
             "value": "2"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "value": "2"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/nvidia.com~1gpu", "value": "2"}])
        bad, cs = wait_until(lambda: crash_looping(sandbox), timeout=90, what="a crash-looping engine pod")
        ended = cs["lastState"]["terminated"]
        assert ended["exitCode"] == 1 and ended["message"].splitlines()[-1] == HEADS_ERROR, ended
        assert not cs["ready"] and bad["metadata"]["annotations"]["sandbox.haw-icc.de/engine"] == "refused"

        waited = run_playbook(ROLLOUT_PLAY, limit=NS)
        assert waited.rc != 0
        msg = " ".join(waited.failure_messages())
        assert "CrashLoopBackOff" in msg and "It last exited with code 1 (Error): " + HEADS_ERROR in msg, msg

        status = run_playbook("playbooks/status.yml", limit=NS)
        assert status.rc == 0, status.failure_messages() or status.stdout[-3000:]
        problems = status.result("Read the namespace", NS)["report"]["problems"]
        assert any(HEADS_ERROR.rstrip(".") in p and "CrashLoopBackOff" in p for p in problems), problems

        logs = run_playbook("playbooks/logs.yml", limit=NS, extra_vars={
            "component": "engine", "logs_lines": 50, "logs_save_dir": str(tmp_path)})
        assert logs.rc == 0, logs.failure_messages() or logs.stdout[-3000:]
        saved = list(tmp_path.rglob("%s_vllm*.log" % bad["metadata"]["name"]))
        assert saved and HEADS_ERROR in saved[0].read_text(), saved

        # The kubelet's back-off: the container is restarted (and fails again) after 10 s.
        wait_until(lambda: (crash_looping(sandbox) or (None, {}))[1].get("restartCount", 0) >= 2, timeout=60,
                   what="a second restart")

        # Service links on again (what the pods had before): vLLM dies on VLLM_PORT=tcp://...
        force(sandbox, [
            {"op": "replace", "path": "/spec/template/spec/containers/0/args/%d" % (args.index("--tensor-parallel-size") + 1),
             "value": "1"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "value": "1"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/nvidia.com~1gpu", "value": "1"},
            {"op": "replace", "path": "/spec/template/spec/enableServiceLinks", "value": True}])

        def port_error():
            found = crash_looping(sandbox)
            if found and found[0]["metadata"]["name"] != bad["metadata"]["name"]:
                return found
            return None
        _linked, cs = wait_until(port_error, timeout=90, what="the pod with service links crash-looping")
        assert cs["lastState"]["terminated"]["message"].splitlines()[-1].startswith(
            "ValueError: invalid literal for int() with base 10: 'tcp://"), cs

        # deploy.yml puts the collection's settings back; the new pod passes and the model answers.
        again = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars={"icc_webui": False})
        assert again.rc == 0, again.failure_messages() or again.stdout[-3000:]
        assert again.result("Ask the model a question through its Service", NS)["model"] == MODEL
        [good] = live_pods(sandbox, NS)
        assert good["spec"]["enableServiceLinks"] is False
        refused = [c for c in vllm_checks() if c["namespace"] == NS and not c["ok"]]
        assert [c["stage"] for c in refused][:2] == ["parallel config", "vllm.envs"], refused
    finally:
        remove_collection(sandbox, NS)
