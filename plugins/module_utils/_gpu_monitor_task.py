# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task of haw_icc.llm.gpu_monitor_sample: its options, and ``run(module)`` (sample, then write
the files). Run by the module, or in-process by its action plugin, which prints one line per sample
(``_gpu_monitor.sample_line``) while it samples."""

from __future__ import annotations

import time

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError

RULES = dict(mutually_exclusive=[("count", "duration")])


def argument_spec():
    return connection_spec(
        namespace=dict(type="str"),
        selector=dict(type="str", default="app.kubernetes.io/component=engine,app.kubernetes.io/part-of=haw-icc-llm"),
        pod=dict(type="str"),
        container=dict(type="str"),
        nvidia_smi=dict(type="str", default="nvidia-smi"),
        metrics=dict(type="bool", default=True),
        metrics_port=dict(type="int", default=8000),
        metrics_path=dict(type="str", default="/metrics"),
        metrics_url=dict(type="str"),
        interval=dict(type="float", default=5),
        count=dict(type="int"),
        duration=dict(type="float"),
        dest=dict(type="path", required=True),
        formats=dict(type="list", elements="str", choices=["csv", "summary", "html", "png"],
                     default=["csv", "summary", "html", "png"]),
        timeout=dict(type="int", default=20),
    )


def run(module, on_sample=None):
    """Sample, then write the files; ``on_sample(index, count, rows)`` is told of each sample's rows."""
    from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor as gm
    from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_report as gr

    p = module.params
    if p["interval"] <= 0:
        raise InputError("interval", p["interval"], "must be more than 0 seconds", "for example 5")
    if p["count"] is not None and p["count"] < 1:
        raise InputError("count", p["count"], "must be at least 1", "for example 12")
    if p["duration"] is not None and p["duration"] <= 0:
        raise InputError("duration", p["duration"], "must be more than 0 seconds", "for example 60")
    count = p["count"] if p["count"] is not None or p["duration"] is not None else 12
    kube = module.client()
    namespace = p["namespace"] or kube.namespace or "default"
    sampler = gm.KubeSampler(kube, module.client(), namespace, selector=p["selector"], pod=p["pod"],
                             container=p["container"], metrics_port=p["metrics_port"],
                             metrics_path=p["metrics_path"], timeout=p["timeout"],
                             metrics_url=p["metrics_url"])
    monitor = gm.Monitor(namespace, sampler.find_pod, sampler.exec_in,
                         sampler.metrics if p["metrics"] else None, nvidia_smi=p["nvidia_smi"],
                         target="pod %s" % p["pod"] if p["pod"] else "selector %s" % p["selector"])
    started = time.time()
    try:
        monitor.run(count=count, duration=p["duration"], interval=p["interval"], on_sample=on_sample)
    finally:
        sampler.close()
    summary, files = gr.write_outputs(monitor, p["dest"], started, p["formats"],
                                      write=not module.check_mode)
    return dict(changed=True, files=files, rows=len(monitor.rows), columns=list(gm.COLUMNS),
                summary=summary, summary_lines=gm.summary_lines(summary))
