"""Faults a real cluster produces, played by the sandbox's kwok fault stages
(tests/cluster/manifests/kwok-faults.yaml.tmpl, described in tests/cluster/README.md):

- an engine image that cannot be pulled (registry unpullable.sandbox.invalid): deploy.yml fails
  fast, from the rollout's fail-fast rules (not the timeout), naming the kubelet's reason, the image
  and what to check;
- a new engine pod that runs but never becomes ready (annotation sandbox.haw-icc.de/fault=never-ready,
  narrowed with sandbox.haw-icc.de/fault-if-args-contain to the new pod's args, set through the role
  input vllm_pod_annotations): change_model.yml rolls back and scale.yml restores the previous state;
  the old model answers again and the WebUI with its chat history is untouched.
"""

from __future__ import annotations

import pytest

from sandboxlib import (MODEL, ask_engine, container_arg, engine_deployment, live_pods, pod_ready,
                        remove_collection, run_playbook, wait_until)

NS = "wcls025-default"
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too
UNPULLABLE = "unpullable.sandbox.invalid/vllm/vllm-openai:v0.8.5"
SHORT_WAIT = 30  # seconds the role waits for the new pod (the smallest vllm_wait_timeout it accepts)


def never_ready_when(args_text):
    """vllm_pod_annotations that make the pod never ready when its args contain ``args_text``."""
    return {"sandbox.haw-icc.de/fault": "never-ready", "sandbox.haw-icc.de/fault-if-args-contain": args_text}


def one_ready_engine(sandbox):
    def settled():
        pods = live_pods(sandbox, NS)
        return len(pods) == 1 and pod_ready(pods[0]) and pods
    return wait_until(settled, timeout=90, what="one ready engine pod")[0]


def test_deploy_with_an_image_that_cannot_be_pulled_fails_fast_and_says_why(sandbox):
    remove_collection(sandbox, NS)
    try:
        # A generous wait: only the fail-fast rules can end this run early with the kubelet's reason.
        run = run_playbook("playbooks/deploy.yml", limit=NS, timeout=600,
                           extra_vars={"vllm_image": UNPULLABLE, "icc_webui": False, "vllm_wait_timeout": 1800})
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "ImagePullBackOff" in msg or "ErrImagePull" in msg, msg
        assert UNPULLABLE in msg, msg
        assert "check its registry, name and tag (vllm_image)" in msg, msg
        # From the fail-fast path, not the timeout: the timeout says "not available after N s".
        assert "not available after" not in msg, msg
        pods = live_pods(sandbox, NS)
        assert pods and not pod_ready(pods[0])
        waiting = pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    finally:
        remove_collection(sandbox, NS)


@pytest.fixture(scope="module")
def deployed(sandbox):
    remove_collection(sandbox, NS)
    run = run_playbook("playbooks/deploy.yml", limit=NS)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert run.result("Ask the model a question through its Service", NS)["model"] == MODEL
    yield run
    remove_collection(sandbox, NS)


def test_change_model_to_a_model_that_never_becomes_ready_rolls_back(sandbox, deployed):
    webui = sandbox.kubectl_json("-n", NS, "get", "deployment", "webui")
    webui_pvc = sandbox.kubectl_json("-n", NS, "get", "pvc", "webui-data")

    run = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={
        "model": SECOND, "change_model_timeout": SHORT_WAIT,
        "vllm_pod_annotations": never_ready_when(" --model %s " % SECOND)})
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    assert "Changing %s to %s failed" % (NS, SECOND) in msg, msg
    assert "not available after %d s" % SHORT_WAIT in msg and "runs but is not ready" in msg, msg
    assert "Rolled back to %s, which answers again" % MODEL in msg, msg
    restored = run.result("Ask the previous model a question again", NS)
    assert restored["model"] == MODEL and restored["answer"].strip()

    _dep, container, _shm = engine_deployment(sandbox, NS)
    assert container_arg(container, "--model") == MODEL
    one_ready_engine(sandbox)
    assert ask_engine(sandbox, NS, MODEL)["choices"][0]["message"]["content"].strip()

    # The WebUI and its chat history were not touched.
    webui_after = sandbox.kubectl_json("-n", NS, "get", "deployment", "webui")
    assert webui_after["metadata"]["uid"] == webui["metadata"]["uid"]
    assert webui_after["metadata"]["generation"] == webui["metadata"]["generation"]
    assert sandbox.kubectl_json("-n", NS, "get", "pvc", "webui-data")["metadata"]["uid"] == webui_pvc["metadata"]["uid"]


def test_scale_whose_new_pod_never_becomes_ready_restores_the_previous_state(sandbox, deployed):
    dep, container, shm = engine_deployment(sandbox, NS)
    before = (container["resources"]["limits"]["nvidia.com/gpu"], container_arg(container, "--tensor-parallel-size"),
              shm, container_arg(container, "--model"))
    assert before[:2] == ("1", "1")

    run = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={
        "gpu_count": 3, "scale_timeout": SHORT_WAIT,
        "vllm_pod_annotations": never_ready_when(" --tensor-parallel-size 3 ")})
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    assert "Scaling %s from 1 to 3 GPUs failed" % NS in msg, msg
    assert "not available after %d s" % SHORT_WAIT in msg and "runs but is not ready" in msg, msg
    assert "The previous state (1 GPUs) was restored" in msg, msg
    restored = run.result("Ask the restored model a question", NS)
    assert restored["model"] == before[3] and restored["answer"].strip()

    _dep, container, shm = engine_deployment(sandbox, NS)
    res = container["resources"]
    after = (res["limits"]["nvidia.com/gpu"], container_arg(container, "--tensor-parallel-size"), shm,
             container_arg(container, "--model"))
    assert after == before and res["requests"]["nvidia.com/gpu"] == "1"
    pod = one_ready_engine(sandbox)
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert ask_engine(sandbox, NS, before[3])["choices"][0]["message"]["content"].strip()
