"""Pure logic of module_utils/_login.py (namespace choice, merge, removal, masking, writing) and
icc_login's main() on input it must refuse before touching anything."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError, KubeconfigError
from ansible_collections.haw_icc.llm.plugins.module_utils._login import (
    load_dest,
    login_entries,
    masked_yaml,
    merge,
    remove,
    write_kubeconfig,
)
from ansible_collections.haw_icc.llm.plugins.modules import icc_login

SRC = yaml.safe_load("""
apiVersion: v1
kind: Config
clusters: [{name: icc, cluster: {server: "https://icc.example:6443", certificate-authority-data: Q0E=}}]
users: [{name: infwabc123, user: {token: s3cr3t-token}}]
contexts: [{name: infwabc123@icc, context: {cluster: icc, user: infwabc123, namespace: wabc123-default}}]
current-context: infwabc123@icc
""")
OTHER = yaml.safe_load("""
apiVersion: v1
kind: Config
clusters: [{name: home, cluster: {server: "https://home:6443"}}]
users: [{name: me, user: {client-key-data: S0VZ, client-certificate-data: Q0VSVA==}}]
contexts: [{name: home, context: {cluster: home, user: me}}]
current-context: home
""")


def test_namespace_from_user_id_overrides_the_context():
    _e, _m, ns = login_entries(SRC, user_id="infwXYZ9")
    assert ns == "wxyz9-default"


def test_namespace_from_context_when_nothing_given():
    entries, minimal, ns = login_entries(SRC)
    assert ns == "wabc123-default"
    assert minimal["current-context"] == "infwabc123@icc"
    assert entries["context"]["context"]["namespace"] == ns


def test_no_namespace_anywhere_names_user_id():
    src = json.loads(json.dumps(SRC))
    del src["contexts"][0]["context"]["namespace"]
    with pytest.raises(InputError) as err:
        login_entries(src)
    assert err.value.variable == "user_id"


def test_bad_user_id_and_namespace():
    with pytest.raises(InputError) as err:
        login_entries(SRC, user_id="abc123")
    assert err.value.variable == "user_id"
    with pytest.raises(InputError) as err:
        login_entries(SRC, namespace="Not_A_Namespace")
    assert err.value.variable == "namespace"


def test_source_without_user_is_refused():
    src = json.loads(json.dumps(SRC))
    src["users"] = []
    with pytest.raises(KubeconfigError):
        login_entries(src)


def test_merge_keeps_every_other_entry_and_is_stable():
    entries, _m, _ns = login_entries(SRC, context="icc")
    merged = merge(OTHER, entries)
    assert [c["name"] for c in merged["clusters"]] == ["home", "icc"]
    assert [u["name"] for u in merged["users"]] == ["me", "infwabc123"]
    assert [c["name"] for c in merged["contexts"]] == ["home", "icc"]
    assert merged["current-context"] == "icc"
    assert merge(merged, entries) == merged          # idempotent
    assert OTHER["current-context"] == "home"         # input untouched


def test_merge_replaces_an_expired_token():
    entries, _m, _ns = login_entries(SRC)
    old = merge(OTHER, entries)
    fresh = json.loads(json.dumps(SRC))
    fresh["users"][0]["user"]["token"] = "new-token"
    new = merge(old, login_entries(fresh)[0])
    assert [u["user"].get("token") for u in new["users"]] == [None, "new-token"]
    assert len(new["users"]) == 2


def test_remove_undoes_merge():
    entries, _m, _ns = login_entries(SRC)
    merged = merge(OTHER, entries)
    back = remove(merged, "infwabc123@icc")
    assert back["clusters"] == OTHER["clusters"] and back["users"] == OTHER["users"]
    assert back["contexts"] == OTHER["contexts"] and back["current-context"] == ""
    assert remove(back, "infwabc123@icc") is None


def test_remove_keeps_shared_cluster():
    entries, _m, _ns = login_entries(SRC)
    merged = merge(None, entries)
    merged["contexts"].append({"name": "second", "context": {"cluster": "icc", "user": "infwabc123"}})
    out = remove(merged, "infwabc123@icc")
    assert [c["name"] for c in out["clusters"]] == ["icc"] and out["users"]


def test_masked_yaml_hides_every_secret():
    text = masked_yaml(merge(OTHER, login_entries(SRC)[0]))
    for secret in ("s3cr3t-token", "S0VZ", "Q0VSVA=="):
        assert secret not in text
    assert text.count("********") == 3
    assert "Q0E=" in text  # the CA certificate is public


@pytest.mark.parametrize("content,state", [
    ("", "broken: empty"), ("<html><body>login</body></html>", "broken: not a kubeconfig"),
    ("{{{", "broken: not valid YAML"), ("clusters: 3", "broken: not a kubeconfig"),
])
def test_load_dest_broken(tmp_path, content, state):
    path = tmp_path / "config"
    path.write_text(content)
    assert load_dest(str(path)) == (None, state)


def test_load_dest_missing_and_ok(tmp_path):
    assert load_dest(str(tmp_path / "none")) == (None, "missing")
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(OTHER))
    assert load_dest(str(path)) == (OTHER, "ok")


def test_write_is_0600_in_a_new_0700_directory(tmp_path):
    dest = tmp_path / "new" / "config"
    write_kubeconfig(str(dest), OTHER)
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert os.stat(dest.parent).st_mode & 0o777 == 0o700
    assert yaml.safe_load(dest.read_text()) == OTHER


def run_main(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            icc_login.main()
    return json.loads(capsys.readouterr().out)


def test_main_bad_user_id_writes_nothing(tmp_path, capsys):
    src = tmp_path / "config.txt"
    src.write_text(yaml.safe_dump(SRC))
    dest = tmp_path / "kube" / "config"
    out = run_main({"src": str(src), "dest": str(dest), "user_id": "bob"}, capsys)
    assert out["failed"] and out["msg"].startswith("user_id='bob'") and "infwabc123" in out["msg"]
    assert not dest.parent.exists()


def test_main_html_src(tmp_path, capsys):
    src = tmp_path / "config.txt"
    src.write_text("<!DOCTYPE html><html><head><title>ICC Login</title></head></html>")
    out = run_main({"src": str(src), "dest": str(tmp_path / "d")}, capsys)
    assert out["failed"] and "HTML page" in out["msg"] and out["error"] == "KubeconfigError"


def test_main_needs_src_or_context(tmp_path, capsys):
    out = run_main({"dest": str(tmp_path / "d")}, capsys)
    assert out["failed"] and out["msg"].startswith("src=None")
    out = run_main({"dest": str(tmp_path / "d"), "state": "absent"}, capsys)
    assert out["failed"] and out["msg"].startswith("context=None")


def test_main_user_id_and_namespace_exclusive(tmp_path, capsys):
    out = run_main({"src": str(tmp_path), "user_id": "infwa1", "namespace": "wa1-default"}, capsys)
    assert out["failed"] and "mutually exclusive" in out["msg"]


def test_main_without_validation_writes_offline_0600_and_is_idempotent(tmp_path, capsys):
    src = tmp_path / "config.txt"
    src.write_text(yaml.safe_dump(SRC))  # server icc.example:6443 is never contacted
    dest = tmp_path / "kube" / "config"
    args = {"src": str(src), "dest": str(dest), "validate": False, "user_id": "infwxyz9"}
    first = run_main(args, capsys)
    assert first["changed"] and first["server_version"] is None and first["namespace"] == "wxyz9-default"
    assert os.stat(dest).st_mode & 0o777 == 0o600 and "backup_file" not in first
    assert "s3cr3t-token" not in json.dumps(first)
    again = run_main(args, capsys)
    assert again["changed"] is False
    written = yaml.safe_load(dest.read_text())
    assert written["contexts"][0]["context"]["namespace"] == "wxyz9-default"
    assert written["users"][0]["user"]["token"] == "s3cr3t-token"


def test_main_check_mode_writes_nothing(tmp_path, capsys):
    src = tmp_path / "config.txt"
    src.write_text(yaml.safe_dump(SRC))
    dest = tmp_path / "config"
    out = run_main({"src": str(src), "dest": str(dest), "validate": False, "_ansible_check_mode": True,
                    "_ansible_diff": True}, capsys)
    assert out["changed"] and not dest.exists()
    assert "s3cr3t-token" not in out["diff"]["after"] and "********" in out["diff"]["after"]


def test_missing_rights_are_summarised_when_there_are_many():
    from ansible_collections.haw_icc.llm.plugins.module_utils import _login

    assert _login.missing_summary(["list_pods", "create_deployments"]) == "list_pods, create_deployments"
    every = [p[0] for p in _login.NAMESPACE_PERMISSIONS]
    text = _login.missing_summary(every)
    assert text == "%d of the %d rights the collection needs (%s, ...)" % (len(every), len(every), ", ".join(every[:3]))


def test_refusals_name_the_callers_variables():
    from ansible_collections.haw_icc.llm.plugins.module_utils._errors import renamed

    names = {"src": "icc_login_src", "user_id": "icc_user_id", "namespace": "icc_namespace", "dest": "dest"}
    assert renamed("The kubeconfig src=/x.txt does not exist. Set src to the path of the downloaded config.txt.",
                   names) == ("The kubeconfig icc_login_src=/x.txt does not exist. Set icc_login_src to the path of "
                              "the downloaded config.txt.")
    # prose that only mentions a namespace stays as it is; the option in "set ... or namespace to" is renamed
    assert renamed("may not use namespace w1-default: set user_id to your login or namespace to w<id>-default.",
                   names) == "may not use namespace w1-default: set icc_user_id to your login or icc_namespace to w<id>-default."
    assert renamed("user_id='infw1; id': refused", names) == "icc_user_id='infw1; id': refused"
    assert renamed("Set src to x", {}) == "Set src to x"
