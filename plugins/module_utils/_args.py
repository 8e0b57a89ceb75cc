# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by several modules, each paired 1:1 with a doc fragment.

``CONNECTION_ARG_SPEC`` <-> ``plugins/doc_fragments/connection.py``. The option names and
environment fallbacks are those of kubernetes.core, so ``module_defaults`` and ``K8S_AUTH_*``
variables that users already have work for our modules too.
"""

from __future__ import annotations

import copy

from ansible.module_utils.basic import env_fallback

CONNECTION_ARG_SPEC = dict(
    kubeconfig=dict(type="raw", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    validate_certs=dict(type="bool", aliases=["verify_ssl"],
                        fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"],
                 fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
    request_timeout=dict(type="int", default=20),
)


def connection_spec(drop=(), **extra):
    """A fresh copy of the connection spec without the options in ``drop``, updated with the
    module's own options (``drop`` pairs with a doc fragment variant such as ``connection.NO_API_KEY``)."""
    spec = copy.deepcopy(CONNECTION_ARG_SPEC)
    for name in drop:
        del spec[name]
    spec.update(extra)
    return spec
