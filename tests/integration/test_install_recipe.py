"""The README's install recipe (the block between <!-- install-recipe --> markers), executed line by
line as written, in a copy of the repository's files with a fresh HOME: afterwards the collection's
playbooks run by name from another directory, without the repository's ansible.cfg."""

from __future__ import annotations

import os
import re
import subprocess

from sandboxlib import REPO, SANDBOX_DIR


def recipe():
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- install-recipe -->\s*```bash\n(.*?)```\s*<!-- /install-recipe -->", text, re.S)
    assert block, "README.md has no install recipe block"
    return block.group(1)


def test_the_readme_install_recipe_works_as_written(sandbox, tmp_path):  # pylint: disable=unused-argument
    src, home = tmp_path / "clone", tmp_path / "home"
    home.mkdir()
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=str(REPO), capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if name.startswith(".cache/") or not (REPO / name).is_file():
            continue
        dest = src / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((REPO / name).read_bytes())
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV", "PYTHON")))
    env.update(HOME=str(home), PATH="/usr/local/bin:/usr/bin:/bin")
    env["PATH"] = "%s:%s" % (os.path.dirname(os.path.realpath(_python3())), env["PATH"])
    script = "set -euo pipefail\n" + recipe()
    proc = subprocess.run(["bash", "-c", script], cwd=str(src), env=env, capture_output=True, text=True, timeout=1200,
                          check=False)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    installed = home / ".ansible" / "collections" / "ansible_collections" / "haw_icc" / "llm"
    assert (installed / "MANIFEST.json").exists() and (home / "my-icc" / "hosts.yml").exists()
    # From another directory, with the recipe's venv and the sandbox's inventory (a copy of the installed one).
    other = tmp_path / "elsewhere"
    other.mkdir()
    env.update(PATH="%s:%s" % (home / ".venvs" / "icc" / "bin", env["PATH"]), SANDBOX_DIR=str(SANDBOX_DIR))
    status = subprocess.run(["ansible-playbook", "-i", str(installed / "inventories" / "sandbox"), "haw_icc.llm.status",
                             "-l", "wstu002-default"], cwd=str(other), env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert status.returncode == 0, (status.stdout[-3000:], status.stderr[-3000:])
    assert "Namespace wstu002-default" in status.stdout and "[DEPRECATION WARNING]" not in status.stdout + status.stderr


def _python3():
    """The machine's python3 (the recipe's first line), not the test's venv."""
    for path in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(path, "python3")
        if os.access(candidate, os.X_OK) and ".venv" not in path and "haw-icc-llm" not in os.path.realpath(candidate):
            return candidate
    return "/usr/bin/python3"
