"""Pure logic of module_utils/_icc.py, _kubeconfig.py and _module.py."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError, KubeconfigError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import (
    gpu_type_info,
    namespace_from_user_id,
    validate_dns_label,
)
from ansible_collections.haw_icc.llm.plugins.module_utils._kubeconfig import parse_kubeconfig
from ansible_collections.haw_icc.llm.plugins.module_utils._module import kubeconfig_secrets

GOOD = """
apiVersion: v1
kind: Config
clusters: [{name: icc, cluster: {server: "https://example.invalid:6443"}}]
users: [{name: infwabc123, user: {token: s3cr3t-token}}]
contexts: [{name: infwabc123@icc, context: {cluster: icc, user: infwabc123}}]
current-context: infwabc123@icc
"""


@pytest.mark.parametrize("login,namespace", [
    ("infwabc123", "wabc123-default"),
    ("INFWXYZ123", "wxyz123-default"),
    (" infw0001 ", "w0001-default"),
])
def test_namespace_from_user_id(login, namespace):
    assert namespace_from_user_id(login) == namespace


@pytest.mark.parametrize("bad", ["", None, "abc123", "infw", "infw-abc", "infwabc 123", "wabc123"])
def test_namespace_from_bad_user_id_names_the_variable(bad):
    with pytest.raises(InputError) as err:
        namespace_from_user_id(bad)
    assert err.value.variable == "user_id"
    assert "infw" in str(err.value)


def test_gpu_types():
    assert gpu_type_info("gpu-tesla-v100")["memory_mib"] == 16384
    assert gpu_type_info("gpu-tesla-v100s")["memory_mib"] == 32768
    with pytest.raises(InputError) as err:
        gpu_type_info("gpu-a100", variable="vllm_gpu_type")
    assert "vllm_gpu_type" in str(err.value) and "gpu-tesla-v100" in str(err.value)


@pytest.mark.parametrize("bad", ["My-VLLM", "-vllm", "vllm_", "a" * 64, "", 5, "vllm.server"])
def test_dns_label_refused(bad):
    with pytest.raises(InputError):
        validate_dns_label(bad, "vllm_name")


def test_parse_good_kubeconfig():
    data = parse_kubeconfig(GOOD)
    assert data["current-context"] == "infwabc123@icc"


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("   \n", "empty"),
    ("<!DOCTYPE html><html><body>ICC Login</body></html>", "HTML page"),
    ("clusters: [unclosed", "not valid YAML"),
    ("just a string", "not a kubeconfig"),
    ("clusters: []\ncontexts: []\nusers: []", "no cluster"),
])
def test_parse_bad_kubeconfig(text, fragment):
    with pytest.raises(KubeconfigError) as err:
        parse_kubeconfig(text)
    assert fragment in str(err.value)
    assert "icc-login.informatik.haw-hamburg.de" in str(err.value)


def test_kubeconfig_secrets_found():
    secrets = kubeconfig_secrets(parse_kubeconfig(GOOD))
    assert secrets == ["s3cr3t-token"]
