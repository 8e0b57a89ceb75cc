"""Stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test --venv downloads get-pip.py from a host that this project's machines cannot reach.
This script does the same job with what Python ships: it bootstraps pip with ensurepip and then
runs `pip install` with the arguments ansible-test passes (the pinned pip version and friends),
which come from PyPI like every other package here.
"""
import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the install below must see the
# machine's pip configuration (index, certificates) like any other pip call.
ensurepip.bootstrap(upgrade=True, default_pip=True)
# get-pip.py's own flags (--no-setuptools, --no-wheel) only say what not to add; pip adds neither.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args, env=env))
