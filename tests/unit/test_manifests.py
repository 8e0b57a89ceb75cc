"""The one engine core's objects (plugins/module_utils/_manifests.py over the registry) and the
apply bookkeeping (plugins/module_utils/_apply.py): pure logic, no cluster. The sandbox tests
(tests/integration/test_roles.py) apply the same objects and run the engine from the pod's argv."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest
import yaml

from ansible_collections.haw_icc.llm.plugins.module_utils import _apply, _engines, _live, _manifests

REPO = pathlib.Path(__file__).resolve().parents[2]
SKIP = ("state", "purge", "wait", "hf_token", "api_key", "cache_storage_class")


def cfg_of(engine, **over):
    """The role configuration the action plugin builds from the role's defaults."""
    e = _engines.get(engine)
    defaults = yaml.safe_load((REPO / "roles" / engine / "defaults" / "main.yml").read_text())
    cfg = dict((k[len(e.prefix):], v) for k, v in defaults.items() if k[len(e.prefix):] not in SKIP)
    cfg.update(namespace="wstu002-default", storage_class="")
    if engine == "vllm":
        cfg["served_model_name"] = cfg["model"]
    cfg.update(over)
    assert e.check(cfg)["errors"] == []
    return e, cfg


def by_kind(objects):
    return dict((o["kind"], o) for o in objects)


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_objects_of_each_engine(engine):
    e, cfg = cfg_of(engine)
    objects = _manifests.engine_objects(e, cfg)
    assert [o["kind"] for o in objects] == ["PersistentVolumeClaim", "Service", "Deployment"]
    dep = by_kind(objects)["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["name"] == engine and c["image"] == cfg["image"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["enableServiceLinks"] is False
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" == c["resources"]["requests"]["nvidia.com/gpu"]
    assert {"name": "cache", "mountPath": e.cache_path} in c["volumeMounts"]
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["failureThreshold"] == 240  # startup_timeout 2400 s / 10 s
    assert pod["volumes"][1]["emptyDir"]["sizeLimit"] == "8Gi"
    assert by_kind(objects)["Service"]["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert dep["metadata"]["labels"]["app.kubernetes.io/component"] == "engine"
    # The live parser of the plan reads back what was applied: one shape, two directions.
    live = _live.live_settings(dep)
    assert live["engine"] == engine and live["model"] == cfg["model"] and live["gpu_count"] == 1
    assert live["shm_size"] == "8Gi" and live["hf_token_secret"] == "" and live["api_key_secret"] == ""


def test_vllm_env_and_secret_references():
    e, cfg = cfg_of("vllm", gpu_count=2)
    dep = by_kind(_manifests.engine_objects(e, cfg, hf_secret="vllm-hf-token", key_secret="my-key"))["Deployment"]
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [v["name"] for v in env]
    assert names[:4] == ["VLLM_USE_V1", "HF_HOME", "HF_HUB_CACHE", "NVIDIA_DRIVER_CAPABILITIES"]
    assert {"name": "VLLM_USE_V1", "value": "0"} in env
    refs = dict((v["name"], v["valueFrom"]["secretKeyRef"]) for v in env if "valueFrom" in v)
    assert refs == {"HF_TOKEN": {"name": "vllm-hf-token", "key": "token"},
                    "HUGGING_FACE_HUB_TOKEN": {"name": "vllm-hf-token", "key": "token"},
                    "VLLM_API_KEY": {"name": "my-key", "key": "api-key"}}
    live = _live.live_settings(dep)
    assert (live["hf_token_secret"], live["api_key_secret"], live["gpu_count"]) == ("vllm-hf-token", "my-key", 2)
    assert dep["spec"]["template"]["spec"]["volumes"][1]["emptyDir"]["sizeLimit"] == "16Gi"


def test_tgi_has_no_api_key_and_its_v100_env():
    e, cfg = cfg_of("tgi")
    dep = by_kind(_manifests.engine_objects(e, cfg, key_secret="ignored"))["Deployment"]
    env = dict((v["name"], v.get("value")) for v in dep["spec"]["template"]["spec"]["containers"][0]["env"])
    assert "VLLM_API_KEY" not in env and env["ATTENTION"] == "paged" and env["HUGGINGFACE_HUB_CACHE"] == "/data"
    assert _manifests.names(e, "tgi")["key_secret"] is None


def test_emptydir_affinity_storage_class_and_annotations():
    e, cfg = cfg_of("vllm", cache_emptydir=True, node_affinity=True, gpu_type="gpu-tesla-v100s",
                    pod_annotations={"prometheus.io/scrape": "true"})
    objects = _manifests.engine_objects(e, cfg)
    assert [o["kind"] for o in objects] == ["Service", "Deployment"]
    tpl = objects[-1]["spec"]["template"]
    assert tpl["spec"]["volumes"][0] == {"name": "cache", "emptyDir": {}}
    assert tpl["spec"]["tolerations"] == [{"key": "gpu-tesla-v100s", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeAffinity" in tpl["spec"]["affinity"]
    assert tpl["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    _e, cfg = cfg_of("vllm", storage_class="fast")
    assert _manifests.engine_objects(e, cfg)[0]["spec"]["storageClassName"] == "fast"


def checksum_of(cfg, versions=()):
    e = _engines.get("vllm")
    dep = _manifests.engine_objects(e, cfg, secret_versions=versions)[-1]
    return dep["spec"]["template"]["metadata"]["annotations"][_manifests.CHECKSUM]


def test_checksum_covers_what_changes_the_pod_only():
    _e, cfg = cfg_of("vllm")
    base = checksum_of(cfg)
    # How a run waits, or a number written as a string, is not part of the pod (issue 11: scale restarted it).
    assert checksum_of(dict(cfg, wait_timeout=1800, unschedulable_grace=30)) == base
    assert checksum_of(dict(cfg, gpu_count="1", max_model_len="4096")) == base
    # What the pod runs is, and so is a changed Secret (a rotated token restarts the pod).
    assert checksum_of(dict(cfg, max_model_len=2048)) != base
    assert checksum_of(cfg, versions=("41",)) != checksum_of(cfg, versions=("42",))


def test_secret_holds_the_value_base64_and_is_hidden_in_a_diff():
    e, cfg = cfg_of("vllm")
    s = _manifests.secret(e, cfg, "key", "sk-secret")
    assert s["metadata"]["name"] == "vllm-api-key"
    assert base64.b64decode(s["data"]["api-key"]).decode() == "sk-secret"
    shown = json.dumps(_apply.diff(None, s))
    assert "sk-secret" not in shown and s["data"]["api-key"] not in shown and "(hidden)" in shown


def test_a_diff_shows_the_settings_annotation_as_a_mapping():
    e, cfg = cfg_of("vllm")
    old = _manifests.engine_objects(e, cfg)[-1]
    new = _manifests.engine_objects(e, dict(cfg, max_num_seqs=16))[-1]
    shown = _apply.diff(dict(old, status={"readyReplicas": 1}), new)
    settings = (shown["before"]["metadata"]["annotations"][_manifests.SETTINGS],
                shown["after"]["metadata"]["annotations"][_manifests.SETTINGS])
    assert settings[0]["max_num_seqs"] == 32 and settings[1]["max_num_seqs"] == 16
    assert dict(settings[0], max_num_seqs=16) == settings[1] and "status" not in shown["before"]
    # Only what is shown: the object the run applies keeps its annotation as one JSON string.
    assert isinstance(new["metadata"]["annotations"][_manifests.SETTINGS], str)


def test_comparable_ignores_what_the_server_writes():
    before = {"kind": "Deployment", "metadata": {"name": "x", "resourceVersion": "1", "generation": 1,
                                                 "managedFields": [{}], "annotations": {"deployment.kubernetes.io/revision": "1"}},
              "spec": {"replicas": 1}, "status": {"readyReplicas": 0}}
    after = {"kind": "Deployment", "metadata": {"name": "x", "resourceVersion": "2", "generation": 1,
                                                "annotations": {"deployment.kubernetes.io/revision": "2"}},
             "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    assert _apply.comparable(before) == _apply.comparable(after)
    assert _apply.comparable(before) != _apply.comparable(dict(after, spec={"replicas": 0}))
    assert _apply.path("apps/v1", "Deployment", "w1-default", "vllm") == "/apis/apps/v1/namespaces/w1-default/deployments/vllm"
    with pytest.raises(ValueError):
        _apply.path("rbac.authorization.k8s.io/v1", "Role", "w1-default")


def webui_cfg(**over):
    from ansible_collections.haw_icc.llm.plugins.module_utils import _engine

    defaults = yaml.safe_load((REPO / "roles" / "webui" / "defaults" / "main.yml").read_text())
    cfg = dict((k[len("webui_"):], v) for k, v in defaults.items()
               if k[len("webui_"):] not in ("state", "purge", "wait", "engine_service", "engine_port", "data_storage_class"))
    cfg.update(namespace="wstu002-default", storage_class="", openai_api_base_url="http://vllm:8000/v1")
    cfg.update(over)
    assert _engine.check("webui", cfg)["errors"] == []
    return cfg


def test_webui_objects_and_ingress():
    objects = _manifests.webui_objects(webui_cfg(openai_api_key_secret="vllm-api-key"))
    assert [o["kind"] for o in objects] == ["PersistentVolumeClaim", "Service", "Deployment"]
    c = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = dict((v["name"], v) for v in c["env"])
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vllm-api-key", "key": "api-key"}
    assert env["WEBUI_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "webui-secret-key", "key": "secret-key"}
    assert env["ENABLE_PERSISTENT_CONFIG"]["value"] == "False" and c["ports"][0]["containerPort"] == 8080
    with_ingress = _manifests.webui_objects(webui_cfg(ingress_enabled=True, ingress_host="chat.example.org"))
    ing = by_kind(with_ingress)["Ingress"]
    assert ing["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt-production"}
    assert ing["spec"]["tls"] == [{"hosts": ["chat.example.org"], "secretName": "webui-tls"}]
    # A rotated engine key (its Secret's version) restarts the WebUI; nothing else in the Secrets does.
    a = _manifests.webui_objects(webui_cfg(), secret_versions=("1", "7"))[-1]
    b = _manifests.webui_objects(webui_cfg(), secret_versions=("1", "8"))[-1]
    assert a["spec"]["template"]["metadata"]["annotations"] != b["spec"]["template"]["metadata"]["annotations"]
    assert _manifests.webui_objects(webui_cfg(wait_timeout=60), ("1",))[-1] == _manifests.webui_objects(webui_cfg(), ("1",))[-1]


class _Deleting(object):
    """A client whose object is gone after ``looks`` more GETs once it was deleted."""

    def __init__(self, looks):
        self.looks, self.deleted = looks, False

    def get_raw(self, path, query=None):
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException

        if self.deleted:
            if self.looks <= 0:
                raise ApiException(status=404)
            self.looks -= 1
        return json.dumps({"kind": "Deployment", "metadata": {"name": "vllm", "namespace": "ns"}})

    def request_raw(self, method, path, query=None, body=None, content_type=None):
        assert method == "DELETE" and body["propagationPolicy"] == "Foreground"
        self.bodies = getattr(self, "bodies", []) + [(query, body)]
        self.deleted = not body.get("dryRun")
        return "{}"


def test_delete_waits_for_the_object_and_reports_its_progress():
    now = [0.0]
    waited = []
    res = _apply.delete(_Deleting(3), "apps/v1", "Deployment", "ns", "vllm", wait_timeout=60, poll=5,
                        clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s), progress=waited.append)
    assert res["changed"] and waited == [0.0, 5.0, 10.0]
    with pytest.raises(TimeoutError, match="still there 12 s after it was deleted"):
        _apply.delete(_Deleting(100), "apps/v1", "Deployment", "ns", "vllm", wait_timeout=12, poll=5,
                      clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))


def test_a_dry_run_delete_says_so_in_its_body():
    """The API server reads a DELETE's query parameters only without a body: a dryRun in the query beside
    the DeleteOptions body deleted for real (check mode of cleanup and of state=absent)."""
    kube = _Deleting(0)
    res = _apply.delete(kube, "v1", "Service", "ns", "vllm", dry_run=True, wait_timeout=60)
    assert res["changed"] and not kube.deleted
    [(query, body)] = kube.bodies
    assert body["dryRun"] == ["All"] and not (query or {}).get("dryRun")
