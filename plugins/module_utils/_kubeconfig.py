# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading kubeconfig files with errors a person understands."""

from __future__ import annotations

import os

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import KubeconfigError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import LOGIN_URL

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

_FRESH = "Download a fresh kubeconfig (config.txt) at %s." % LOGIN_URL


def parse_kubeconfig(text, source="the kubeconfig"):
    """Parse kubeconfig text; refuse HTML pages, empty files, YAML garbage and non-kubeconfigs."""
    stripped = (text or "").strip()
    if not stripped:
        raise KubeconfigError("%s is empty." % source, _FRESH)
    head = stripped[:512].lower()
    if head.startswith("<!doctype") or head.startswith("<html") or "<html" in head:
        raise KubeconfigError(
            "%s is an HTML page, not a kubeconfig (the login page was probably saved instead of "
            "the downloaded file)." % source,
            "Log in at %s and use the 'download' button; the file is usually called config.txt."
            % LOGIN_URL)
    try:
        data = yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark is not None else ""
        raise KubeconfigError("%s is not valid YAML%s." % (source, where), _FRESH)
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list) \
            or not isinstance(data.get("users", []), list) \
            or not isinstance(data.get("contexts"), list):
        raise KubeconfigError("%s is YAML but not a kubeconfig (it needs 'clusters', 'users' and "
                              "'contexts' lists)." % source, _FRESH)
    if not data.get("clusters") or not data.get("contexts"):
        raise KubeconfigError("%s has no cluster or no context." % source, _FRESH)
    return data


def read_kubeconfig(path, variable=None):
    """Read and parse a kubeconfig file; every failure is a KubeconfigError. ``variable``: the option
    the path came from (e.g. ``src``), named in the message."""
    path = os.path.expanduser(str(path))
    label = "%s=%s" % (variable, path) if variable else path
    if not os.path.exists(path):
        raise KubeconfigError("The kubeconfig %s does not exist." % label,
                              "Set %s to the path of the downloaded config.txt. " % (variable or "it") + _FRESH)
    if os.path.isdir(path):
        raise KubeconfigError("The kubeconfig %s is a directory, not a file." % label, _FRESH)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError("The kubeconfig %s cannot be read (%s)." % (label, exc),
                              "Check the file's permissions, or " + _FRESH[0].lower() + _FRESH[1:])
    return parse_kubeconfig(text, source="The kubeconfig %s" % label)
