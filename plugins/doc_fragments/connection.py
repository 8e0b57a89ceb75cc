# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of CONNECTION_ARG_SPEC (plugins/module_utils/_args.py)."""

from __future__ import annotations


class ModuleDocFragment(object):

    # The connection options of kubernetes.core except api_key (llm_health takes no Kubernetes token:
    # its api_key is a deprecated alias of llm_api_key, the LLM server's key).
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig as a dictionary.
      - If not set, the default kubeconfig C(~/.kube/config) or E(KUBECONFIG) is used.
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, overriding the kubeconfig's server.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA certificate that signed the API server's certificate.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  request_timeout:
    description:
      - Seconds to wait for one answer of the API server before giving up.
      - Bounded so that a missing VPN connection fails quickly instead of hanging.
    type: int
    default: 20
requirements:
  - kubernetes >= 24.2.0 (Python client)
"""

    # kubernetes.core's api_key: every module but llm_health extends connection and connection.API_KEY.
    API_KEY = r"""
options:
  api_key:
    description:
      - A bearer token for the API server, overriding the kubeconfig's credentials.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
"""
