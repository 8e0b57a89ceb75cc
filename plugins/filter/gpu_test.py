# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of test_gpu.yml's checks (module_utils/_gpu_test.py), one read each:

- ``gpu_test_spec(pod)``: what the engine pod asks for (GPUs, tensor parallel, model, /dev/shm, node).
- ``gpu_test_output(stdout_lines, query)``: the output of the one exec (nvidia-smi, -L, the GPU
  query, the CUDA environment, /dev/shm).
- ``gpu_test_checks(spec, output, health, service, log, min_shm_mib_per_gpu)``: the checks.
- ``gpu_test_lines(spec, namespace, target, pod_name, output, checks)``: the result for the terminal.
- ``gpu_test_prefixed(checks, prefix)``: the checks with their names prefixed.
"""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_test
from ansible_collections.haw_icc.llm.plugins.module_utils._text import plain as _plain


def gpu_test_spec(pod):
    return _gpu_test.pod_spec(_plain(pod))


def gpu_test_output(stdout_lines, query):
    return _gpu_test.parse_output([str(x) for x in _plain(stdout_lines) or []], str(query))


def gpu_test_checks(spec, output, health, service, log, min_shm_mib_per_gpu):
    return _gpu_test.checks(_plain(spec), _plain(output), _plain(health), str(service or ""), _plain(log),
                            int(min_shm_mib_per_gpu))


def gpu_test_lines(spec, namespace, target, pod_name, output, checks):
    return _gpu_test.lines(str(namespace), str(target), str(pod_name), _plain(spec), _plain(output), _plain(checks))


def gpu_test_prefixed(checks, prefix):
    return _gpu_test.prefixed(_plain(checks), str(prefix or ""))


class FilterModule(object):
    def filters(self):
        return {
            "gpu_test_spec": gpu_test_spec,
            "gpu_test_output": gpu_test_output,
            "gpu_test_checks": gpu_test_checks,
            "gpu_test_lines": gpu_test_lines,
            "gpu_test_prefixed": gpu_test_prefixed,
        }
