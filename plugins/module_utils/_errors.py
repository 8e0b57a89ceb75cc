# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed exceptions of haw_icc.llm.

Every error a user can cause or meet carries a message that says what happened and a ``hint`` that
says what to do. Modules turn them into ``fail_json`` in one place (``_module.IccModule.fail_from``).
"""

from __future__ import annotations

import re


class IccError(Exception):
    """Base of every error of this collection."""

    def __init__(self, message, hint=None, **details):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self):
        if self.hint:
            return "%s %s" % (self.message, self.hint)
        return self.message


class InputError(IccError):
    """An option or variable has a value we refuse before anything touches the cluster."""

    def __init__(self, variable, value, problem, use_instead=None):
        hint = "Use %s." % use_instead if use_instead else None
        super().__init__("%s=%r: %s." % (variable, value, problem), hint, variable=variable)
        self.variable = variable
        self.value = value


class KubeconfigError(IccError):
    """A kubeconfig is missing, unreadable or not a kubeconfig."""


class ClusterUnreachableError(IccError):
    """The API server cannot be reached (network, VPN, DNS, TLS) within the timeout."""


class AuthenticationError(IccError):
    """The API server rejected the credentials (HTTP 401)."""


class PermissionDeniedError(IccError):
    """The API server refused an action (HTTP 403)."""


class ProbeError(IccError):
    """An LLM server did not answer as an OpenAI-compatible server must."""


def renamed(text, names):
    """``text`` with the options in ``names`` (``{"src": "icc_login_src"}``) called by the names the
    user wrote, where a message names an option: ``src=...``, ``Set src to ...``, ``... or src to ...``."""
    for option, variable in sorted((names or {}).items()):
        if not variable or variable == option:
            continue
        o = re.escape(option)
        text = re.sub(r"\b%s=" % o, variable + "=", text)
        text = re.sub(r"\b([Ss]et|or) %s\b(?= to\b| \(|$|[ ,.;])" % o, r"\1 " + variable.replace("\\", "\\\\"), text)
    return text
