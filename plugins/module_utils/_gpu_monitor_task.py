# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task of haw_icc.llm.gpu_monitor_sample: its options, and ``run(module)`` (sample, then write
the files). Run by the module, or in-process by its action plugin, which prints one line per sample
(``_gpu_monitor.sample_line``) while it samples."""

from __future__ import annotations

import json
import threading
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _llm_health
from ansible_collections.haw_icc.llm.plugins.module_utils._args import CONNECTION_ARG_SPEC, connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError, InputError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import ParamsModule

# The options of haw_icc.llm.llm_health that ``load`` takes (the rest are set by the sampling).
LOAD_OPTIONS = ("service", "port", "model", "question", "max_tokens", "requests", "concurrency", "api_key_secret",
                "api_key_secret_key", "timeout")

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
        load=dict(type="dict"),
        load_grace=dict(type="float", default=300),
    )


class LoadJob(object):
    """The load of ``load`` (haw_icc.llm.llm_health's load mode, in a thread) while the samples are
    taken. ``service`` defaults to the engine Deployment the selector finds (its Service has its
    name), ``api_key_secret`` to the Secret that engine reads its API key from."""

    def __init__(self, kube, namespace, params):
        load = dict(params["load"])
        unknown = sorted(set(load) - set(LOAD_OPTIONS))
        if unknown:
            raise InputError("load", ", ".join(unknown), "not an option of the load",
                             "some of %s" % ", ".join(LOAD_OPTIONS))
        if not load.get("service"):
            load.update(self._engine(kube, namespace, params["selector"], load))
        load.setdefault("requests", 8)
        args = dict((k, params.get(k)) for k in CONNECTION_ARG_SPEC if params.get(k) is not None)
        args.update(load, namespace=namespace, stream=False)
        validated = ArgumentSpecValidator(_llm_health.argument_spec(), **_llm_health.RULES).validate(args)
        if validated.error_messages:
            raise InputError("load", json.dumps(params["load"], sort_keys=True), "; ".join(validated.error_messages),
                             "options of haw_icc.llm.llm_health's load mode (%s)" % ", ".join(LOAD_OPTIONS))
        self.module = ParamsModule(validated.validated_parameters)
        self.service = load["service"]
        self.outcome = None
        self.thread = threading.Thread(target=self._run, name="gpu-monitor-load")
        self.thread.daemon = True

    @staticmethod
    def _engine(kube, namespace, selector, load):
        raw = kube.get_raw("/apis/apps/v1/namespaces/%s/deployments" % quote(namespace, safe=""),
                           {"labelSelector": selector})
        items = sorted(json.loads(raw).get("items") or [], key=lambda d: d["metadata"]["name"])
        if not items:
            raise IccError("No engine Deployment in %s matches %s, so the load has no Service." % (namespace, selector),
                           "Deploy one first (playbook deploy.yml), or name the Service (gpu_monitor_load_service).")
        found = {"service": items[0]["metadata"]["name"]}
        if not load.get("api_key_secret"):
            name, key = _engines.api_key_ref((items[0].get("spec") or {}).get("template", {}).get("spec"))
            if name:
                found.update(api_key_secret=name, api_key_secret_key=key)
        return found

    def _run(self):
        try:
            self.outcome = ("ok", _llm_health.run(self.module)["load"])
        except IccError as exc:
            self.outcome = ("failed", str(exc))
        except Exception as exc:  # pylint: disable=broad-except  # reported, not a crash of the sampling
            self.outcome = ("failed", "%s: %s" % (type(exc).__name__, exc))

    def start(self):
        self.thread.start()

    def finish(self, grace):
        """``{"load": figures}`` or ``{"load_error": message}``, waiting at most ``grace`` seconds more."""
        self.thread.join(max(0.0, grace))
        if self.outcome is None:
            return {"load_error": "the load on Service %s did not finish within %ss after the sampling"
                                  % (self.service, grace)}
        state, value = self.outcome
        return {"load": value} if state == "ok" else {"load_error": value}


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
    job = LoadJob(kube, namespace, p) if p["load"] and not module.check_mode else None
    started = time.time()
    if job is not None:
        job.start()
    try:
        monitor.run(count=count, duration=p["duration"], interval=p["interval"], on_sample=on_sample)
    finally:
        sampler.close()
    summary, files = gr.write_outputs(monitor, p["dest"], started, p["formats"],
                                      write=not module.check_mode)
    result = dict(changed=True, files=files, rows=len(monitor.rows), columns=list(gm.COLUMNS),
                  summary=summary, summary_lines=gm.summary_lines(summary))
    if job is not None:
        result.update(job.finish(p["load_grace"]))
    return result
