# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module wrapper: dependency checks, client creation, and the one place where our typed
errors become ``fail_json``."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.haw_icc.llm.plugins.module_utils._args import CONNECTION_ARG_SPEC
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, renamed

SECRET_KEYS = ("token", "client-key-data", "password", "client-certificate-data", "id-token",
               "refresh-token", "access-token", "secret")


def kubeconfig_secrets(data):
    """Every secret string in a kubeconfig dict (tokens, keys, passwords), for masking."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SECRET_KEYS and isinstance(value, str) and value:
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


class IccModule(AnsibleModule):
    """AnsibleModule plus the collection's conventions."""

    def __init__(self, *args, **kwargs):
        self._needs_kubernetes = kwargs.pop("needs_kubernetes", True)
        super(IccModule, self).__init__(*args, **kwargs)
        if isinstance(self.params.get("kubeconfig"), dict):
            self.no_log_values.update(kubeconfig_secrets(self.params["kubeconfig"]))
        if self._needs_kubernetes:
            from ansible_collections.haw_icc.llm.plugins.module_utils import _client

            if not _client.HAS_KUBERNETES:
                self.fail_json(msg=missing_required_lib("kubernetes"),
                               exception=_client.KUBERNETES_IMPORT_ERROR)

    def connection_params(self):
        return dict((key, self.params.get(key)) for key in CONNECTION_ARG_SPEC)

    def client(self):
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

        return build_client(**self.connection_params())

    def fail_from(self, exc, **result):
        result.update(exc.details)
        # A module with the option ``variables`` names the caller's variables instead of its options.
        self.fail_json(msg=renamed(str(exc), self.params.get("variables")), error=type(exc).__name__, **result)

    def run(self, func):
        """Run ``func(module)`` and exit with its result dict; typed errors fail cleanly."""
        try:
            result = func(self)
        except IccError as exc:
            self.fail_from(exc)
        self.exit_json(**result)


class ParamsModule(object):
    """What a module's ``run(module)`` reads of ``IccModule``, for running it outside a module
    process (an action plugin on the controller, or a thread of another module) with parameters
    already validated against its argument spec."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.no_log_values = set()

    def connection_params(self):
        return dict((key, self.params.get(key)) for key in CONNECTION_ARG_SPEC)

    def client(self):
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

        return build_client(**self.connection_params())
