"""icc_login against the sandbox: the student kubeconfigs play the downloaded config.txt."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest
import yaml

from sandboxlib import NS_ONLY, READER, run_playbook

OTHER = """apiVersion: v1
kind: Config
clusters:
- name: home
  cluster: {server: "https://home.invalid:6443"}
users:
- name: me
  user: {token: my-home-token}
contexts:
- name: home
  context: {cluster: home, user: me}
current-context: home
"""


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


def files(directory):
    return sorted(os.listdir(directory))


def login_playbook(tasks):
    return """
- hosts: localhost
  connection: local
  gather_facts: false
  vars: {ansible_python_interpreter: "{{ ansible_playbook_python }}"}
  tasks:
%s
""" % tasks


@pytest.mark.parametrize("student,cluster_view", [(READER, True), (NS_ONLY, False)])
def test_merge_check_diff_idempotent_absent(sandbox, tmp_path, student, cluster_view):
    src = tmp_path / "config.txt"
    src.write_text(open(sandbox.kubeconfig(student)).read())
    token = yaml.safe_load(src.read_text())["users"][0]["user"]["token"]
    dest = tmp_path / "kube" / "config"
    dest.parent.mkdir()
    dest.write_text(OTHER)
    os.chmod(dest, 0o644)
    login_id = "infw" + student[1:].split("-")[0]
    task = """
    - name: %%s
      haw_icc.llm.icc_login:
        src: %s
        dest: %s
        user_id: %s
        state: %%s
      check_mode: %%s
      diff: true
""" % (src, dest, login_id)
    check = login_playbook(task % ("Check", "present", "true"))
    run = run_playbook(check)
    res = run.result("Check")
    assert not res.get("failed"), res
    assert res["changed"] is True and dest.read_text() == OTHER and files(dest.parent) == ["config"]
    diff = res["diff"][0] if isinstance(res["diff"], list) else res["diff"]
    assert token not in diff["after"] and "my-home-token" not in diff["before"] and "********" in diff["after"]
    assert "namespace: %s" % student in diff["after"]
    assert token not in run.stdout

    run = run_playbook(login_playbook(task % ("Login", "present", "false") + task % ("Again", "present", "false")))
    first, again = run.result("Login"), run.result("Again")
    assert first["changed"] is True and again["changed"] is False, run.stdout[-2000:]
    assert first["namespace"] == student and first["context"] == "%s@icc" % login_id
    assert first["server_version"].startswith("v1.")
    assert first["missing_permissions"] == [] and all(v for k, v in first["permissions"].items() if k != "list_nodes"
                                                      and k != "list_pods_all_namespaces")
    assert first["permissions"]["list_nodes"] is cluster_view and first["cluster_view"] is cluster_view
    assert first["quota"]["gpu"]["hard"] == 4
    assert os.stat(dest).st_mode & 0o777 == 0o600
    backup = first["backup_file"]
    assert open(backup).read() == OTHER and "backup_file" not in again
    merged = yaml.safe_load(dest.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["home", "%s@icc" % login_id]
    assert merged["current-context"] == "%s@icc" % login_id
    assert merged["users"][0]["user"]["token"] == "my-home-token" and merged["users"][1]["user"]["token"] == token
    assert token not in run.stdout
    # The merged kubeconfig really works for kubectl.
    assert sandbox.kubectl("-n", student, "get", "pods", kubeconfig=str(dest)).returncode == 0

    run = run_playbook(login_playbook(task % ("Remove", "absent", "false") + task % ("Gone", "absent", "false")))
    assert run.result("Remove")["changed"] is True and run.result("Gone")["changed"] is False
    back = yaml.safe_load(dest.read_text())
    original = yaml.safe_load(OTHER)
    assert back["clusters"] == original["clusters"] and back["users"] == original["users"]
    assert back["contexts"] == original["contexts"]


def test_new_dest_without_merge(sandbox, tmp_path):
    src = tmp_path / "config.txt"
    src.write_text(open(sandbox.kubeconfig(NS_ONLY)).read())
    dest = tmp_path / "new" / "config"
    run = run_playbook(login_playbook("""
    - name: Login
      haw_icc.llm.icc_login: {src: %s, dest: %s, merge: false, context: icc}
""" % (src, dest)))
    res = run.result("Login")
    assert res["changed"] and res["namespace"] == NS_ONLY and res["context"] == "icc" and "backup_file" not in res
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert yaml.safe_load(dest.read_text())["current-context"] == "icc"


class BlackHole(object):
    """A TCP port that accepts connections and never answers (a server behind a dead VPN)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


def test_every_error_is_clear_and_writes_nothing(sandbox, tmp_path):
    good = yaml.safe_load(open(sandbox.kubeconfig(NS_ONLY)).read())
    srcs = {}

    def src(name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        srcs[name] = str(path)
        return str(path)

    src("html.txt", "<!DOCTYPE html>\n<html><head><title>ICC Login</title></head><body>Login</body></html>\n")
    src("garbage.txt", "clusters: [\n  - {name: : :\n")
    src("empty.txt", "")
    src("good.txt", good)
    unreachable = yaml.safe_load(yaml.safe_dump(good))
    unreachable["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    src("unreachable.txt", unreachable)
    hole = BlackHole()
    blackhole = yaml.safe_load(yaml.safe_dump(good))
    blackhole["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:%d" % hole.port
    src("blackhole.txt", blackhole)
    expired = yaml.safe_load(yaml.safe_dump(good))
    expired["users"][0]["user"]["token"] = "expired0token0that0the0server0does0not0know"
    src("expired.txt", expired)
    dest = tmp_path / "kube" / "config"
    dest.parent.mkdir()
    dest.write_text(OTHER)
    broken = tmp_path / "broken" / "config"
    broken.parent.mkdir()
    broken.write_text("<html>not a kubeconfig</html>\n")

    cases = [
        ("Missing src", dict(src=str(tmp_path / "nope.txt")), "does not exist"),
        ("HTML page", dict(src=srcs["html.txt"]), "is an HTML page"),
        ("YAML garbage", dict(src=srcs["garbage.txt"]), "is not valid YAML"),
        ("Empty file", dict(src=srcs["empty.txt"]), "is empty"),
        ("Bad user_id", dict(src=srcs["good.txt"], user_id="stu002"), "user_id='stu002'"),
        ("Foreign namespace", dict(src=srcs["good.txt"], user_id="infwstu001"), "may not use namespace wstu001-default"),
        ("Unreachable", dict(src=srcs["unreachable.txt"]), "VPN"),
        ("Timeout", dict(src=srcs["blackhole.txt"], request_timeout=2), "VPN"),
        ("Expired token", dict(src=srcs["expired.txt"]), "HTTP 401"),
        ("Broken dest without backup", dict(src=srcs["good.txt"], dest=str(broken), backup=False),
         "not overwritten without a backup"),
    ]
    tasks = ""
    for name, args, _needle in cases:
        args.setdefault("dest", str(dest))
        tasks += """
    - name: %s
      haw_icc.llm.icc_login: %s
      ignore_errors: true
""" % (name, yaml.safe_dump(args, default_flow_style=True).strip())
    before = digest(dest), digest(broken)
    try:
        run = run_playbook(login_playbook(tasks), timeout=300)
    finally:
        hole.close()
    for name, _args, needle in cases:
        res = run.result(name)
        assert res.get("failed") and needle in res["msg"], (name, res.get("msg"))
        assert res.get("changed") in (None, False)
    msgs = {name: run.result(name)["msg"] for name, _a, _n in cases}
    assert "https://icc-login.informatik.haw-hamburg.de/" in msgs["Expired token"]
    assert "infwabc123" in msgs["Bad user_id"]
    assert (digest(dest), digest(broken)) == before
    assert files(dest.parent) == ["config"] and files(broken.parent) == ["config"]
    assert good["users"][0]["user"]["token"] not in run.stdout


def test_broken_dest_is_backed_up_before_replacing(sandbox, tmp_path):
    src = tmp_path / "config.txt"
    src.write_text(open(sandbox.kubeconfig(NS_ONLY)).read())
    dest = tmp_path / "config"
    dest.write_text("<html>saved the portal page here by mistake</html>\n")
    run = run_playbook(login_playbook("""
    - name: Login
      haw_icc.llm.icc_login: {src: %s, dest: %s}
""" % (src, dest)))
    res = run.result("Login")
    assert res["changed"] and open(res["backup_file"]).read().startswith("<html>saved")
    assert yaml.safe_load(dest.read_text())["current-context"] == "infwstu002@icc"
