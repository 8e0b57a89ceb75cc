"""The kubelet environment of the sandbox (tests/cluster/kubelet_env.py), by Kubernetes' rules."""

from __future__ import annotations

import base64
import sys

import pytest

from sandboxlib import REPO

sys.path.insert(0, str(REPO / "tests" / "cluster"))
import kubelet_env  # noqa: E402  pylint: disable=wrong-import-position


def service(name, ip, ports, namespace="wstu001-default"):
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": ports}}


VLLM = service("vllm", "10.96.0.5", [{"name": "http", "port": 8000, "protocol": "TCP"}])
WEBUI = service("open-webui", "10.96.0.7", [{"name": "http", "port": 80}, {"port": 3000, "protocol": "UDP"}])
MASTER = service("kubernetes", "10.96.0.1", [{"name": "https", "port": 443}], namespace="default")
SECRET = {"kind": "Secret", "metadata": {"name": "vllm-api-key"}, "data": {
    "api-key": base64.b64encode(b"sk-123").decode(), "bad key": base64.b64encode(b"x").decode()}}
CONFIG = {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"MODE": "fast", "LEVEL": "3"}}


def pod(links=None, env=(), env_from=(), hostname=None):
    spec = {"containers": [{"name": "vllm", "env": list(env), "envFrom": list(env_from),
                            "resources": {"limits": {"cpu": "1500m", "memory": "16Gi"}}}],
            "nodeName": "gpu-v100-1"}
    if links is not None:
        spec["enableServiceLinks"] = links
    if hostname:
        spec["hostname"] = hostname
    return {"metadata": {"name": "vllm-abc", "namespace": "wstu001-default", "uid": "u1", "labels": {"app": "x"}},
            "spec": spec, "status": {"podIP": "10.244.0.9", "hostIP": "127.0.0.1"}}


def test_service_links_are_the_docker_link_variables_of_pkg_kubelet_envvars():
    env = kubelet_env.container_env(pod(), services=[VLLM, WEBUI], master_service=MASTER)
    assert env["VLLM_SERVICE_HOST"] == "10.96.0.5" and env["VLLM_SERVICE_PORT"] == "8000"
    assert env["VLLM_SERVICE_PORT_HTTP"] == "8000"
    assert env["VLLM_PORT"] == "tcp://10.96.0.5:8000"  # what vLLM reads as its own port number
    assert env["VLLM_PORT_8000_TCP"] == "tcp://10.96.0.5:8000"
    assert env["VLLM_PORT_8000_TCP_PROTO"] == "tcp" and env["VLLM_PORT_8000_TCP_PORT"] == "8000"
    assert env["VLLM_PORT_8000_TCP_ADDR"] == "10.96.0.5"
    assert env["OPEN_WEBUI_PORT"] == "tcp://10.96.0.7:80" and env["OPEN_WEBUI_PORT_3000_UDP"] == "udp://10.96.0.7:3000"
    assert "OPEN_WEBUI_SERVICE_PORT_HTTP" in env and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443" and env["HOSTNAME"] == "vllm-abc"


def test_enable_service_links_false_keeps_only_the_master_service():
    env = kubelet_env.container_env(pod(links=False), services=[VLLM, WEBUI], master_service=MASTER)
    assert sorted(k for k in env if k.endswith("_SERVICE_HOST")) == ["KUBERNETES_SERVICE_HOST"]
    assert "VLLM_PORT" not in env


def test_services_without_a_cluster_ip_are_left_out():
    headless = service("db", "None", [{"port": 5432}])
    assert not [k for k in kubelet_env.container_env(pod(), services=[headless]) if k.startswith("DB_")]


def test_env_wins_over_service_variables_and_expands_references():
    env = kubelet_env.container_env(pod(env=[
        {"name": "VLLM_PORT", "value": "8001"},
        {"name": "URL", "value": "http://$(VLLM_SERVICE_HOST):$(VLLM_PORT)/$(UNDEFINED)/$$(ESCAPED)"},
    ]), services=[VLLM])
    assert env["VLLM_PORT"] == "8001"
    assert env["URL"] == "http://10.96.0.5:8001/$(UNDEFINED)/$(ESCAPED)"


def test_value_from_secrets_config_maps_fields_and_resources():
    env = kubelet_env.container_env(pod(env=[
        {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "vllm-api-key", "key": "api-key"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}},
    ], env_from=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "vllm-api-key"}}]),
        secrets=[SECRET], configmaps=[CONFIG])
    assert env["VLLM_API_KEY"] == "sk-123" and env["MODE"] == "fast" and env["POD"] == "vllm-abc"
    assert env["NODE"] == "gpu-v100-1" and env["APP"] == "x" and env["CPUS"] == "2" and env["MEM_MI"] == "16384"
    assert env["CFG_MODE"] == "fast" and env["CFG_LEVEL"] == "3" and env["api-key"] == "sk-123"
    assert "bad key" not in env and "GONE" not in env


def test_secrets_as_a_list_returns_them_without_a_kind_are_decoded_too():
    """Items of list_namespaced_secret carry no ``kind``: the value is still the decoded key (found by
    the sandbox's per-pod engine, which got the base64 text as its API key and answered every request 401)."""
    listed = {k: v for k, v in SECRET.items() if k != "kind"}
    env = kubelet_env.container_env(pod(env=[
        {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "vllm-api-key", "key": "api-key"}}}]),
        secrets=[listed], configmaps=[{k: v for k, v in CONFIG.items() if k != "kind"}])
    assert env["VLLM_API_KEY"] == "sk-123"


@pytest.mark.parametrize("ref,message", [
    ({"name": "missing", "key": "k"}, 'secret "missing" not found'),
    ({"name": "vllm-api-key", "key": "token"}, "couldn't find key token in Secret wstu001-default/vllm-api-key"),
])
def test_a_missing_secret_or_key_is_a_create_container_config_error(ref, message):
    with pytest.raises(kubelet_env.ContainerConfigError) as err:
        kubelet_env.container_env(pod(env=[{"name": "X", "valueFrom": {"secretKeyRef": ref}}]), secrets=[SECRET])
    assert str(err.value) == message and err.value.reason == "CreateContainerConfigError"


def test_hostname_is_the_pods_hostname_or_name():
    assert kubelet_env.container_env(pod(hostname="engine"))["HOSTNAME"] == "engine"
