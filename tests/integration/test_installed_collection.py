"""The collection as a student runs it: the built tarball installed with ``ansible-galaxy collection
install -p``, every playbook run by FQCN from a directory outside the repository with ``ANSIBLE_CONFIG``
unset (Ansible's own defaults: the default callback, deprecation warnings on), on the pinned
ansible-core 2.19 (kubernetes.core 6.2.0) and on ansible-core 2.21 with kubernetes.core 6.6.0
(Python 3.12, hack/venv-core221.sh). Each run: no deprecation warning, no table printed as one string
of escaped newlines, and the hints of the summaries run as printed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import pytest

from sandboxlib import REPO, SANDBOX_DIR, http_json, wait_until

NS = "wcls001-default"
FIRST = "HuggingFaceTB/SmolLM2-135M-Instruct"  # inventories/sandbox's model
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too


def core221():
    proc = subprocess.run(["bash", str(REPO / "hack" / "venv-core221.sh")], capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1] + "/bin"


@pytest.fixture(scope="module", params=["2.19", "2.21"])
def installed(request, tmp_path_factory):
    """``(run, home)``: run(playbook, *args) runs haw_icc.llm.<playbook> from outside the repo."""
    core = request.param
    bindir = str(REPO / ".venv" / "bin") if core == "2.19" else core221()
    top = tmp_path_factory.mktemp("installed-%s" % core)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    # kubectl (for access) is the sandbox's, on PATH as a student's would be.
    kubectl_dir = (SANDBOX_DIR / "bin-dir").read_text().strip()
    env.update(HOME=str(top), PATH="%s:%s:%s" % (bindir, kubectl_dir, env["PATH"]), SANDBOX_DIR=str(SANDBOX_DIR))
    build = subprocess.run([bindir + "/ansible-galaxy", "collection", "build", "-f", "--output-path", str(top), str(REPO)],
                           cwd=str(top), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    tarball = sorted(top.glob("haw_icc-llm-*.tar.gz"))[0]
    inst = subprocess.run([bindir + "/ansible-galaxy", "collection", "install", str(tarball), "-p",
                           str(top / ".ansible" / "collections")], cwd=str(top), env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert inst.returncode == 0, inst.stderr
    # The installed copy's sandbox inventory (it reads SANDBOX_DIR); nothing of the repository is used.
    inventory = top / "my-icc"
    shutil.copytree(top / ".ansible" / "collections" / "ansible_collections" / "haw_icc" / "llm" / "inventories"
                    / "sandbox", inventory)
    work = top / "elsewhere"
    work.mkdir()

    def run(argv, check_deprecations=True):
        proc = subprocess.run(argv, cwd=str(work), env=env, capture_output=True, text=True, timeout=900, check=False)
        out = proc.stdout + proc.stderr
        if check_deprecations:
            # Ansible's and Python's own (a CryptographyDeprecationWarning printed by every run of an
            # unpinned cryptography 51 was one).
            assert "[DEPRECATION WARNING]" not in out and "DeprecationWarning" not in out, out[-4000:]
        assert not re.search(r'"msg": "[^"\n]*\\n', proc.stdout), proc.stdout[-4000:]  # no \n-escaped tables
        return proc

    def playbook(name, *args):
        return run([bindir + "/ansible-playbook", "-i", str(inventory), "haw_icc.llm." + name, "-l", NS] + list(args))

    yield core, run, playbook, inventory
    playbook("cleanup", "-e", "confirm=true", "-e", "purge=true")


def hint(text, prefix):
    """The command line printed after ``prefix`` (up to the next double quote or parenthesis)."""
    match = re.search(re.escape(prefix) + r"(ansible-playbook [^\"(]+)", text)
    assert match, text[-3000:]
    return shlex.split(match.group(1).strip())


def test_every_playbook_from_the_installed_tarball(sandbox, installed):  # pylint: disable=unused-argument
    _core, run, playbook, inventory = installed
    deploy = playbook("deploy", "-e", "icc_webui=false")
    assert deploy.returncode == 0, deploy.stdout[-4000:]
    assert "ansible_collections/haw_icc/llm" in deploy.stdout or "haw_icc.llm" in deploy.stdout
    # A role variable given with -e is a string to Ansible: the default's number, unchanged, changes nothing ...
    same = playbook("deploy", "-e", "icc_webui=false", "-e", "vllm_max_num_seqs=32")
    assert same.returncode == 0 and re.search(r"%s\s*: ok=\d+\s+changed=0 " % NS, same.stdout), same.stdout[-3000:]
    # ... and --diff of a one-flag change shows that flag, its setting and the pod's checksum, in lines
    # that read well: no managedFields, status or line of JSON.
    diff = playbook("deploy", "-e", "icc_webui=false", "-e", "vllm_max_num_seqs=16", "--check", "--diff")
    assert diff.returncode == 0, diff.stdout[-3000:]
    printed = [line for line in diff.stdout.splitlines() if line.startswith(("+", "-")) and not line.startswith(("---", "+++"))]
    assert len(printed) == 6 and '"max_num_seqs": 16' in "\n".join(printed), printed
    assert max(len(line) for line in printed) < 120 and "managedFields" not in diff.stdout, printed
    status = playbook("status")
    assert status.returncode == 0 and "Namespace %s" % NS in status.stdout, status.stdout[-3000:]
    logs = playbook("logs")
    assert logs.returncode == 0, logs.stdout[-3000:]
    # test_gpu: the sandbox's nvidia-smi shows 4 GPUs to a 1-GPU pod, so one check fails; the run
    # itself must still read well and say so.
    gpu = playbook("test_gpu")
    assert "[OK] nvidia-smi: 4 GPU(s)" in gpu.stdout and "[FAIL] GPUs seen = GPUs requested" in gpu.stdout
    monitor = playbook("monitor", "-e", "gpu_monitor_duration=6")
    assert monitor.returncode == 0, monitor.stdout[-3000:]
    assert "FAILED - RETRYING" not in monitor.stdout
    # SmolLM2's 9 heads: 1 or 3 GPUs; the class namespaces' quota is 4.
    scale = playbook("scale", "-e", "gpu_count=3")
    assert scale.returncode == 0 and "runs on 3 GPUs (was 1" in scale.stdout, scale.stdout[-3000:]
    change = playbook("change_model", "-e", "model=" + SECOND)
    assert change.returncode == 0 and "serves %s (was %s" % (SECOND, FIRST) in change.stdout, change.stdout[-3000:]

    # The deploy summary's hint, run as printed (with the sandbox's kubectl on PATH).
    access_argv = hint(deploy.stdout, "API and WebUI: ")
    assert access_argv[:3] == ["ansible-playbook", "-i", str(inventory)] and "haw_icc.llm.access" in access_argv
    access = run(access_argv)
    assert access.returncode == 0, access.stdout[-3000:]
    url = re.search(r"http://127\.0\.0\.1:(\d+)/v1", access.stdout)
    assert url, access.stdout[-3000:]
    models = wait_until(lambda: http_json("http://127.0.0.1:%s/v1/models" % url.group(1), timeout=5), timeout=30,
                        what="the forwarded API")
    assert models["data"]
    stop_argv = hint(access.stdout, "Stop with: ")
    assert "state=absent" in " ".join(stop_argv)
    stop = run(stop_argv)
    assert stop.returncode == 0, stop.stdout[-3000:]

    gone = playbook("cleanup", "-e", "confirm=true")
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert "removed" in gone.stdout


def test_login_as_the_readme_says(sandbox, installed):
    """login with the student's inventory (-i my-icc, as the README has it): no warning at all, the
    kubeconfig merged into ~/.kube/config (0600), and a second run changes nothing."""
    _core, run, _playbook, inventory = installed
    home = inventory.parent
    src = home / "Downloads" / "config.txt"
    src.parent.mkdir(exist_ok=True)
    shutil.copyfile(sandbox.kubeconfig(NS), src)
    argv = ["ansible-playbook", "-i", str(inventory), "haw_icc.llm.login", "-e", "icc_login_src=%s" % src,
            "-e", "icc_namespace=%s" % NS]
    first = run(argv)
    assert first.returncode == 0 and "Namespace %s" % NS in first.stdout, first.stdout[-3000:]
    assert "[WARNING]" not in first.stdout + first.stderr, first.stdout + first.stderr
    assert (home / ".kube" / "config").stat().st_mode & 0o777 == 0o600
    again = run(argv)
    assert again.returncode == 0 and re.search(r"localhost\s*: ok=\d+\s+changed=0 ", again.stdout), again.stdout[-3000:]


def test_a_refusal_prints_its_reason_once(installed):
    """ansible-core 2.19+ print a failure as an [ERROR] block and as the fatal result: the block has a
    headline, the reason (the user's variable, its value, what to use) is printed once."""
    _core, _run, playbook, _inventory = installed
    for argv, reason in ((["deploy", "-e", "icc_gpu_count=9"], "gpu_count=9"),
                         (["scale"], "gpu_count=(unset)"),
                         (["cleanup", "-e", "confirm=maybe"], "confirm=maybe")):
        proc = playbook(*argv)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and out.count(reason) == 1, out[-3000:]
        assert out.count("[ERROR]: Task failed: %s: " % NS) == 1 and "(why, and what to do: the msg below)" in out, out[-3000:]
        assert "Traceback" not in out, out[-3000:]


def test_an_inventory_without_namespaces_fails_clearly(installed):
    _core, run, _playbook, _inventory = installed
    proc = run(["ansible-playbook", "-i", "my-icc-typo", "haw_icc.llm.status"])
    assert proc.returncode != 0
    text = " ".join(proc.stdout.split())
    assert "has no hosts, so there is no namespace to work on" in text and "cp -r " in text
