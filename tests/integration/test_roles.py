"""Roles vllm, tgi and webui against the sandbox, each run through ansible-playbook with a
namespace-only student kubeconfig (class namespaces wcls028..030, so that the playbook tests of
wstu001/wstu002 are not disturbed).

Every check-mode, idempotence and bad-input test compares the namespace's objects and their
resourceVersions before and after the run, not only what Ansible reports.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request

import pytest

from sandboxlib import MODEL, MODEL_TP, kubectl_apply, run_playbook, wait_until

NS_VLLM = "wcls028-default"
NS_TGI = "wcls029-default"
NS_WEBUI = "wcls030-default"
KINDS = "deployments,replicasets,pods,services,secrets,persistentvolumeclaims,configmaps,ingresses"
API_KEY = "sk-test-7f3a9c1e5b"  # a value we can search for in manifests
HF_TOKEN = "hf_testtoken_4d2b8e"
VLLM_TASK = "haw_icc.llm.vllm : Make the vLLM server present"
VLLM_WAIT = "haw_icc.llm.vllm : Wait until the vLLM server is ready"  # the role's second task: the rollout

PLAY = """
- name: Role under test
  hosts: all
  gather_facts: false
  module_defaults:
    group/kubernetes.core.k8s:
      kubeconfig: "{{ icc_kubeconfig }}"
    group/haw_icc.llm.icc:
      kubeconfig: "{{ icc_kubeconfig }}"
  roles:
    - role: haw_icc.llm.%s
"""


@pytest.fixture(scope="module")
def inventory(sandbox, tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    hosts = {ns: {"icc_kubeconfig": sandbox.kubeconfig(ns)} for ns in (NS_VLLM, NS_TGI, NS_WEBUI)}
    path.write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": hosts}}))
    return path


def play(role, inventory, namespace, check=False, diff=False, **extra):
    return run_playbook(PLAY % role, inventory=inventory, limit=namespace, extra_vars=extra,
                        check=check, diff=diff)


def snapshot(sandbox, namespace):
    """{kind/name: resourceVersion} of every object of the namespace we could touch."""
    items = sandbox.kubectl_json("-n", namespace, "get", KINDS)["items"]
    return {"%s/%s" % (i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"] for i in items
            if not (i["kind"] == "Secret" and i.get("type") == "kubernetes.io/service-account-token")}


def cleanup(sandbox, namespace):
    sandbox.kubectl("-n", namespace, "delete", "deployment,service,pvc,secret,ingress", "-l",
                    "app.kubernetes.io/part-of=haw-icc-llm", "--wait=true", "--timeout=60s", check=False)


def get(sandbox, namespace, kind, name):
    return sandbox.kubectl_json("-n", namespace, "get", kind, name)


def ok(run):
    assert run.rc == 0, "\n".join(run.failure_messages()) + run.stdout[-3000:] + run.stderr[-2000:]
    return run


def pods_of(sandbox, namespace, name):
    pods = sandbox.kubectl_json("-n", namespace, "get", "pods", "-l",
                                "app.kubernetes.io/instance=%s" % name)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def http_get(url, timeout=20, key=None):
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


# --- vLLM -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vllm(sandbox, inventory):
    cleanup(sandbox, NS_VLLM)
    run = ok(play("vllm", inventory, NS_VLLM, vllm_model=MODEL_TP, vllm_max_model_len=2048, vllm_gpu_count=2,
                  vllm_api_key=API_KEY, vllm_hf_token=HF_TOKEN, vllm_node_affinity=True))
    yield run
    cleanup(sandbox, NS_VLLM)


def test_vllm_converge_objects_as_specified(sandbox, vllm):
    dep = get(sandbox, NS_VLLM, "deployment", "vllm")
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "haw-icc-llm"
    assert {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by"} <= set(labels)
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    spec = dep["spec"]["template"]["spec"]
    assert "haw-icc.de/config-checksum" in dep["spec"]["template"]["metadata"]["annotations"]
    [c] = spec["containers"]
    assert c["image"] == "vllm/vllm-openai:v0.8.5"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"  # rollout_status shows the last log line
    args = c["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args.count("--tensor-parallel-size") == 1
    assert args[args.index("--dtype") + 1] == "half"
    res = c["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "2"
    assert res["requests"]["cpu"] == res["limits"]["cpu"]
    assert res["requests"]["memory"] == res["limits"]["memory"]
    assert {"key": "gpu-tesla-v100", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["Tesla-V100-PCIE-16GB"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http", "scheme": "HTTP"}
    assert c["ports"][0]["containerPort"] == 8000
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 1200
    env = {e["name"]: e for e in c["env"]}
    for name, secret, key in (("HF_TOKEN", "vllm-hf-token", "token"),
                              ("HUGGING_FACE_HUB_TOKEN", "vllm-hf-token", "token"),
                              ("VLLM_API_KEY", "vllm-api-key", "api-key")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    assert env["VLLM_USE_V1"]["value"] == "0"
    assert env["NCCL_P2P_LEVEL"]["value"] == "NVL"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert volumes["cache"]["persistentVolumeClaim"]["claimName"] == "vllm-cache"
    svc = get(sandbox, NS_VLLM, "service", "vllm")
    assert svc["spec"]["ports"][0]["port"] == 8000
    pvc = get(sandbox, NS_VLLM, "pvc", "vllm-cache")
    assert pvc["status"]["phase"] == "Bound"


def test_vllm_no_plain_text_secret_in_any_manifest(sandbox, vllm):
    text = json.dumps(sandbox.kubectl_json("-n", NS_VLLM, "get", "deployments,replicasets,pods,services"))
    assert API_KEY not in text and HF_TOKEN not in text
    assert API_KEY not in vllm.stdout and HF_TOKEN not in vllm.stdout
    secret = get(sandbox, NS_VLLM, "secret", "vllm-api-key")
    assert base64.b64decode(secret["data"]["api-key"]).decode() == API_KEY


def test_vllm_pod_on_a_v100_node(sandbox, vllm):
    [pod] = pods_of(sandbox, NS_VLLM, "vllm")
    node = sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "Tesla-V100-PCIE-16GB"
    assert any(t["key"] == "gpu-tesla-v100" for t in node["spec"]["taints"])


def test_vllm_service_reaches_the_engine(sandbox, vllm):
    """The Service reaches the pod's own engine, which wants the key the role put into its Secret."""
    proc, port = sandbox.port_forward(NS_VLLM, "svc/vllm", 8000)
    try:
        status, body = http_get("http://127.0.0.1:%d/v1/models" % port)
        assert status == 401, (status, body)
        status, body = http_get("http://127.0.0.1:%d/v1/models" % port, key=API_KEY)
        assert status == 200 and MODEL_TP in body, (status, body)
    finally:
        proc.kill()


def test_vllm_second_run_changes_nothing(sandbox, inventory, vllm):
    before = snapshot(sandbox, NS_VLLM)
    run = ok(play("vllm", inventory, NS_VLLM, vllm_model=MODEL_TP, vllm_max_model_len=2048, vllm_gpu_count=2,
                  vllm_api_key=API_KEY, vllm_hf_token=HF_TOKEN, vllm_node_affinity=True))
    assert run.changed() == 0
    assert snapshot(sandbox, NS_VLLM) == before


def test_vllm_check_mode_changes_nothing(sandbox, inventory, vllm):
    before = snapshot(sandbox, NS_VLLM)
    run = ok(play("vllm", inventory, NS_VLLM, check=True, diff=True, vllm_model=MODEL_TP, vllm_max_model_len=2048, vllm_gpu_count=2,
                  vllm_api_key=API_KEY, vllm_hf_token=HF_TOKEN, vllm_node_affinity=True,
                  vllm_max_num_seqs=64))
    assert run.changed() >= 1  # the Deployment would change
    assert snapshot(sandbox, NS_VLLM) == before
    applied = run.result(VLLM_TASK)
    changed = [r for r in applied["objects"] if r["changed"]]
    assert [r["kind"] for r in changed] == ["Deployment"] and "rollout" not in applied
    assert run.result(VLLM_WAIT)["skip_reason"] == "Nothing to wait for: check mode."
    [shown] = applied["diff"]  # what --diff prints: the Deployment before and after, nothing else
    assert shown["after_header"] == "Deployment/vllm"
    args = shown["after"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-num-seqs") + 1] == "64"
    assert API_KEY not in run.stdout and HF_TOKEN not in run.stdout


def test_vllm_config_change_restarts_the_pod(sandbox, inventory, vllm):
    [old] = pods_of(sandbox, NS_VLLM, "vllm")
    run = ok(play("vllm", inventory, NS_VLLM, vllm_model=MODEL_TP, vllm_max_model_len=2048, vllm_gpu_count=2, vllm_api_key=API_KEY,
                  vllm_hf_token=HF_TOKEN, vllm_node_affinity=True, vllm_max_num_seqs=16))
    assert run.result(VLLM_TASK)["changed"]
    [new] = pods_of(sandbox, NS_VLLM, "vllm")
    assert new["metadata"]["name"] != old["metadata"]["name"]
    assert "16" == new["spec"]["containers"][0]["args"][new["spec"]["containers"][0]["args"].index(
        "--max-num-seqs") + 1]
    # A changed API key restarts the pod too (the Secret's version is part of the checksum).
    before = get(sandbox, NS_VLLM, "deployment", "vllm")["spec"]["template"]["metadata"]["annotations"]
    ok(play("vllm", inventory, NS_VLLM, vllm_model=MODEL_TP, vllm_max_model_len=2048, vllm_gpu_count=2, vllm_api_key=API_KEY + "x",
            vllm_hf_token=HF_TOKEN, vllm_node_affinity=True, vllm_max_num_seqs=16))
    after = get(sandbox, NS_VLLM, "deployment", "vllm")["spec"]["template"]["metadata"]["annotations"]
    assert before["haw-icc.de/config-checksum"] != after["haw-icc.de/config-checksum"]


def test_vllm_absent_keeps_cache_and_purge_removes_it(sandbox, inventory, vllm):
    # Check mode first: a server-side dry run of each deletion, nothing goes (before the fix the dryRun
    # was in the query of a DELETE with a body, which the API server ignores, and everything went).
    before = snapshot(sandbox, NS_VLLM)
    dry = ok(play("vllm", inventory, NS_VLLM, check=True, vllm_state="absent", vllm_purge=True))
    assert dry.changed() >= 1 and snapshot(sandbox, NS_VLLM) == before
    run = ok(play("vllm", inventory, NS_VLLM, vllm_state="absent"))
    assert run.changed() >= 1
    names = set(snapshot(sandbox, NS_VLLM))
    assert "PersistentVolumeClaim/vllm-cache" in names
    assert not {"Deployment/vllm", "Service/vllm", "Secret/vllm-api-key", "Secret/vllm-hf-token"} & names
    assert not pods_of(sandbox, NS_VLLM, "vllm")
    again = ok(play("vllm", inventory, NS_VLLM, vllm_state="absent"))
    assert again.changed() == 0
    ok(play("vllm", inventory, NS_VLLM, vllm_state="absent", vllm_purge=True))
    wait_until(lambda: "PersistentVolumeClaim/vllm-cache" not in snapshot(sandbox, NS_VLLM), 60,
               what="cache PVC deleted")


def test_vllm_fails_fast_with_the_quota_reason(sandbox, inventory):
    """Two servers of 3 GPUs do not fit the quota of 4: the second run reports the quota."""
    cleanup(sandbox, NS_VLLM)
    try:
        ok(play("vllm", inventory, NS_VLLM, vllm_model=MODEL, vllm_gpu_count=3, vllm_name="first"))
        run = play("vllm", inventory, NS_VLLM, vllm_model=MODEL, vllm_gpu_count=3, vllm_name="second",
                   vllm_wait_timeout=1800)
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "exceeded quota" in msg and "requests.nvidia.com/gpu" in msg, msg
    finally:
        cleanup(sandbox, NS_VLLM)


def test_vllm_fails_after_the_unschedulable_grace_when_no_node_fits(sandbox, inventory):
    """31.5 CPUs fit the quota (32) but no node (31 allocatable): the pod is unschedulable. A
    namespace-only student cannot read the nodes, so the module cannot tell that no node will ever fit
    and gives the pod its unschedulable grace (here 10 s), then fails naming the scheduler's reason."""
    cleanup(sandbox, NS_VLLM)
    try:
        run = play("vllm", inventory, NS_VLLM, vllm_model=MODEL, vllm_cpu="31500m", vllm_wait_timeout=1800,
                   vllm_unschedulable_grace=10)
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "cannot be scheduled" in msg and "Insufficient cpu" in msg, msg
        assert "longer than the 10 s that GPUs of a terminating pod" in msg, msg
        waited = run.result(VLLM_WAIT, NS_VLLM)["rollout"]
        assert 10 <= waited["elapsed"] < 60, waited
    finally:
        cleanup(sandbox, NS_VLLM)


# --- TGI ------------------------------------------------------------------------------------------

def test_tgi_converge_idempotent_and_absent(sandbox, inventory):
    cleanup(sandbox, NS_TGI)
    try:
        ok(play("tgi", inventory, NS_TGI, tgi_model=MODEL, tgi_hf_token=HF_TOKEN))
        dep = get(sandbox, NS_TGI, "deployment", "tgi")
        [c] = dep["spec"]["template"]["spec"]["containers"]
        assert c["image"] == "ghcr.io/huggingface/text-generation-inference:2.4.1"
        assert "--num-shard" not in c["args"] and "--quantize" not in c["args"]
        assert c["args"][c["args"].index("--dtype") + 1] == "float16"
        assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/data", "/dev/shm"}
        assert HF_TOKEN not in json.dumps(dep)
        assert c["startupProbe"]["httpGet"]["path"] == "/health"
        [pod] = pods_of(sandbox, NS_TGI, "tgi")
        node = sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"].startswith("Tesla-V100")
        proc, port = sandbox.port_forward(NS_TGI, "svc/tgi", 8000)
        try:
            assert MODEL in http_get("http://127.0.0.1:%d/v1/models" % port)[1]
        finally:
            proc.kill()

        before = snapshot(sandbox, NS_TGI)
        again = ok(play("tgi", inventory, NS_TGI, tgi_model=MODEL, tgi_hf_token=HF_TOKEN))
        assert again.changed() == 0 and snapshot(sandbox, NS_TGI) == before

        ok(play("tgi", inventory, NS_TGI, tgi_state="absent"))
        names = set(snapshot(sandbox, NS_TGI))
        assert "PersistentVolumeClaim/tgi-cache" in names and "Deployment/tgi" not in names
    finally:
        cleanup(sandbox, NS_TGI)


def test_tgi_sharding_override_warns_and_shards(sandbox, inventory):
    cleanup(sandbox, NS_TGI)
    try:
        run = ok(play("tgi", inventory, NS_TGI, tgi_model=MODEL_TP, tgi_gpu_count=2,
                      tgi_allow_sharding_on_v100=True, tgi_gpu_type="gpu-tesla-v100s"))
        warned = run.result("haw_icc.llm.tgi : Make the TGI server present")["warnings"]
        assert any("tgi_allow_sharding_on_v100=true" in w for w in warned), warned
        args = get(sandbox, NS_TGI, "deployment", "tgi")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--num-shard") + 1] == "2"
        [pod] = pods_of(sandbox, NS_TGI, "tgi")
        assert pod["spec"]["nodeName"] == "gpu-v100s-1"
    finally:
        cleanup(sandbox, NS_TGI)


# --- WebUI ----------------------------------------------------------------------------------------

def secret_key(sandbox):
    return get(sandbox, NS_WEBUI, "secret", "webui-secret-key")["data"]["secret-key"]


def engine_key_secret(sandbox, namespace, name="vllm-api-key"):
    """The engine's API key Secret, as the vllm role creates it (cleanup() removes it with the rest)."""
    kubectl_apply(sandbox, [{"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "haw-icc-llm"}},
        "stringData": {"api-key": API_KEY}}])


def test_webui_with_a_missing_key_secret_fails_fast_and_names_it(sandbox, inventory):
    cleanup(sandbox, NS_WEBUI)
    try:
        run = play("webui", inventory, NS_WEBUI, webui_openai_api_key_secret="no-such-key")
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "no-such-key" in msg and "CreateContainerConfigError" in msg, msg
    finally:
        cleanup(sandbox, NS_WEBUI)


def test_webui_lifecycle_keeps_data_and_secret_key(sandbox, inventory):
    cleanup(sandbox, NS_WEBUI)
    try:
        engine_key_secret(sandbox, NS_WEBUI)
        ok(play("webui", inventory, NS_WEBUI, webui_openai_api_key_secret="vllm-api-key"))
        dep = get(sandbox, NS_WEBUI, "deployment", "webui")
        [c] = dep["spec"]["template"]["spec"]["containers"]
        assert c["image"] == "ghcr.io/open-webui/open-webui:v0.6.18"
        env = {e["name"]: e for e in c["env"]}
        assert env["OPENAI_API_BASE_URL"]["value"] == "http://vllm:8000/v1"
        assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vllm-api-key", "key": "api-key"}
        assert env["WEBUI_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "webui-secret-key"
        assert env["ENABLE_OLLAMA_API"]["value"] == "False"
        assert env["ENABLE_PERSISTENT_CONFIG"]["value"] == "False"
        assert env["ENABLE_EVALUATION_ARENA_MODELS"]["value"] == "False"
        assert c["ports"][0]["containerPort"] == 8080
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["port"] == "http" and c[probe]["httpGet"]["path"] == "/health"
        assert c["volumeMounts"][0]["mountPath"] == "/app/backend/data"
        svc = get(sandbox, NS_WEBUI, "service", "webui")
        assert svc["spec"]["ports"][0]["port"] == 3000 and svc["spec"]["ports"][0]["targetPort"] == "http"
        key = secret_key(sandbox)
        assert len(base64.b64decode(key)) == 48
        assert key not in json.dumps(dep)
        proc, port = sandbox.port_forward(NS_WEBUI, "svc/webui", 3000)
        try:
            # The real Open WebUI starts on this first connection (tests/cluster/pod_webui.py).
            assert http_get("http://127.0.0.1:%d/health" % port, timeout=180)[0] == 200
        finally:
            proc.kill()

        before = snapshot(sandbox, NS_WEBUI)
        again = ok(play("webui", inventory, NS_WEBUI, webui_openai_api_key_secret="vllm-api-key"))
        assert again.changed() == 0 and snapshot(sandbox, NS_WEBUI) == before

        # A different engine reaches the UI (new pod), the secret key stays.
        ok(play("webui", inventory, NS_WEBUI, webui_engine_service="tgi"))
        assert secret_key(sandbox) == key

        ok(play("webui", inventory, NS_WEBUI, webui_state="absent"))
        names = set(snapshot(sandbox, NS_WEBUI))
        assert {"PersistentVolumeClaim/webui-data", "Secret/webui-secret-key"} <= names
        assert not {"Deployment/webui", "Service/webui"} & names
        ok(play("webui", inventory, NS_WEBUI))
        assert secret_key(sandbox) == key  # never regenerated

        ok(play("webui", inventory, NS_WEBUI, webui_state="absent", webui_purge=True))
        wait_until(lambda: not {"PersistentVolumeClaim/webui-data", "Secret/webui-secret-key"}
                   & set(snapshot(sandbox, NS_WEBUI)), 60, what="PVC and secret key purged")
    finally:
        cleanup(sandbox, NS_WEBUI)


def test_webui_check_mode_creates_nothing(sandbox, inventory):
    cleanup(sandbox, NS_WEBUI)
    before = snapshot(sandbox, NS_WEBUI)
    run = ok(play("webui", inventory, NS_WEBUI, check=True))
    assert run.changed() >= 1
    assert snapshot(sandbox, NS_WEBUI) == before


def test_webui_ingress_optional(sandbox, inventory):
    cleanup(sandbox, NS_WEBUI)
    try:
        ok(play("webui", inventory, NS_WEBUI, webui_ingress_enabled=True, webui_ingress_host="chat.example.org"))
        ing = get(sandbox, NS_WEBUI, "ingress", "webui")
        assert ing["spec"]["ingressClassName"] == "nginx"
        assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-production"
        assert ing["spec"]["rules"][0]["host"] == "chat.example.org"
        ok(play("webui", inventory, NS_WEBUI))
        assert "Ingress/webui" not in snapshot(sandbox, NS_WEBUI)
    finally:
        cleanup(sandbox, NS_WEBUI)


# --- refused input: the error names the variable, and nothing in the namespace changed ------------

BAD = [
    ("vllm", {"vllm_model": "org/model; rm -rf /"}, "vllm_model"),
    ("vllm", {"vllm_gpu_count": 0}, "vllm_gpu_count"),
    ("vllm", {"vllm_gpu_count": 5}, "vllm_gpu_count"),
    ("vllm", {"vllm_dtype": "bfloat16"}, "vllm_dtype"),
    ("vllm", {"vllm_quantization": "awq"}, "vllm_quantization"),
    ("vllm", {"vllm_memory": "16GB"}, "vllm_memory"),
    ("vllm", {"vllm_image": "vllm/vllm-openai:latest"}, "vllm_image"),
    ("vllm", {"vllm_name": "My_VLLM"}, "vllm_name"),
    ("vllm", {"vllm_service_port": 70000}, "vllm_service_port"),
    ("vllm", {"vllm_extra_args": ["--tensor-parallel-size=2"]}, "vllm_extra_args"),
    ("tgi", {"tgi_gpu_count": 2}, "tgi_gpu_count"),
    ("tgi", {"tgi_max_input_tokens": 4096, "tgi_max_total_tokens": 4096}, "tgi_max_input_tokens"),
    ("tgi", {"tgi_quantize": "gptq", "tgi_dtype": "float16"}, "tgi_dtype"),
    ("webui", {"webui_service_port": 70000}, "webui_service_port"),
    ("webui", {"webui_image": "ghcr.io/open-webui/open-webui:main"}, "webui_image"),
    ("webui", {"webui_data_size": "5GB"}, "webui_data_size"),
]


@pytest.fixture(scope="module")
def occupied(sandbox, inventory):
    """A namespace with a running server: refused input must not touch it either."""
    cleanup(sandbox, NS_TGI)
    ok(play("vllm", inventory, NS_TGI, vllm_model=MODEL))
    yield NS_TGI
    cleanup(sandbox, NS_TGI)


@pytest.mark.parametrize("role,extra,variable", BAD, ids=["%s-%s" % (b[2], i) for i, b in enumerate(BAD)])
def test_bad_input_refused_before_the_cluster(sandbox, inventory, occupied, role, extra, variable):
    before = snapshot(sandbox, occupied)
    assert "Deployment/vllm" in before
    extra = dict(extra)
    if role in ("vllm", "tgi"):
        extra.setdefault(role + "_model", MODEL)
    run = play(role, inventory, occupied, **extra)
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    assert variable in msg, msg
    assert "Use " in msg or "must be" in msg or "one of" in msg, msg
    assert snapshot(sandbox, occupied) == before


def test_bad_input_absent_only_checks_names(sandbox, inventory):
    """state=absent with a bad name is refused too, and touches nothing."""
    before = snapshot(sandbox, NS_WEBUI)
    run = play("webui", inventory, NS_WEBUI, webui_state="absent", webui_name="Bad Name")
    assert run.rc != 0 and "webui_name" in " ".join(run.failure_messages())
    assert snapshot(sandbox, NS_WEBUI) == before


def test_roles_need_nothing_cluster_scoped():
    """Every kind the role cores (llm_engine, llm_webui) apply or delete, and cleanup's llm_remove
    deletes, is namespaced: a namespace-only kubeconfig is enough (the tests above use one)."""
    from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

    assert all("/namespaces/%s/" in path for path in _apply.KINDS.values())
    kinds = {"Deployment", "Service", "PersistentVolumeClaim", "Ingress", "Secret", "Job", "Pod", "ConfigMap"}
    assert {kind for _version, kind in _apply.KINDS} == kinds
