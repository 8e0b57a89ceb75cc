"""The collection builds into a tarball that installs into an empty collections path, and
ansible-doc renders every module from that installation."""

from __future__ import annotations

import os
import pathlib
import subprocess
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("galaxy")
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / "none.cfg"))
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO),
                            "--output-path", str(work)], capture_output=True, text=True, env=env,
                           cwd=str(work), timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    tarballs = list(work.glob("haw_icc-llm-*.tar.gz"))
    assert len(tarballs) == 1
    names = tarfile.open(tarballs[0]).getnames()
    # Nothing of the build machine goes into the tarball.
    tops = set(n.split("/")[0] for n in names)
    assert not [t for t in tops if t in (".venv", ".cache", ".ansible", ".git") or t.startswith(".sandbox")]
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    dest = work / "collections"
    inst = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps",
                           str(tarballs[0]), "-p", str(dest)], capture_output=True, text=True,
                          env=env, cwd=str(work), timeout=300, check=False)
    assert inst.returncode == 0, inst.stderr
    assert (dest / "ansible_collections" / "haw_icc" / "llm" / "MANIFEST.json").exists()
    return work, dest, env


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_from_tarball(installed, module):
    work, dest, env = installed
    env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(dest))
    doc = subprocess.run([str(BIN / "ansible-doc", ), "haw_icc.llm.%s" % module], capture_output=True,
                         text=True, env=env, cwd=str(work), timeout=120, check=False)
    assert doc.returncode == 0, doc.stderr
    assert str(dest) in doc.stdout  # rendered from the installed tarball, not from this checkout
    assert "OPTIONS" in doc.stdout and "RETURN VALUES" in doc.stdout
