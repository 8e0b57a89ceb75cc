"""The main job end to end: playbooks/deploy.yml in the sandbox, with a student's own kubeconfig,
answered by the real model behind the deployed Service."""

from __future__ import annotations

from sandboxlib import NS_ONLY, run_playbook


def test_deploy_answers_and_rerun_changes_nothing(sandbox):
    try:
        _deploy_twice(sandbox)
    finally:
        sandbox.kubectl("-n", NS_ONLY, "delete", "deployment,service,pvc,secret,configmap", "-l",
                        "app.kubernetes.io/part-of=haw-icc-llm", "--wait=false", check=False)


def _deploy_twice(sandbox):
    first = run_playbook("playbooks/deploy.yml", limit=NS_ONLY)
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    health = first.result("Ask the model a question through its Service", NS_ONLY)
    assert health["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert health["answer"].strip()
    deployments = sandbox.kubectl_json("-n", NS_ONLY, "get", "deployments",
                                       kubeconfig=sandbox.kubeconfig(NS_ONLY))["items"]
    engine = [d for d in deployments
              if d["metadata"]["labels"].get("app.kubernetes.io/part-of") == "haw-icc-llm"]
    assert engine and engine[0]["status"].get("availableReplicas") == 1

    second = run_playbook("playbooks/deploy.yml", limit=NS_ONLY)
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed(NS_ONLY) == 0
