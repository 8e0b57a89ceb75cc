#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_monitor_sample
short_description: Sample the GPUs and the engine of an LLM pod and write a CSV, a summary and charts
version_added: 0.1.0
description:
  - Every O(interval) seconds, for O(count) samples or O(duration) seconds, runs
    C(nvidia-smi --query-gpu) and C(nvidia-smi --query-compute-apps) inside the engine pod through the
    API server (C(pods/exec), the API C(kubectl exec) uses) and reads the engine's C(/metrics) through a
    port-forward the module opens itself (C(pods/portforward)).
  - nvidia-smi values C([N/A]) and C([Not Supported]) become empty cells; any other text where a number
    belongs fails the sample with a clear message. A pod that is replaced or restarts during the run is
    recorded in C(events) of RV(summary) and sampling goes on with the new pod.
  - Engine metrics of vLLM, TGI and llama.cpp, under each engine's own names (running and waiting
    requests, KV-cache use under both vLLM names, prompt and generation token counters as rates, time
    to first token and latency histograms as means per interval). An engine without C(/metrics) is
    recorded as not available. An engine that guards C(/metrics) with its API key (llama-server) is
    asked again with the key its pod reads from its Secret.
  - Writes into O(dest) a tidy CSV (one row per sample and GPU, plain numbers, units in the column names,
    ISO 8601 UTC timestamps), a JSON summary (min, mean and max per metric, tokens per second, peak memory,
    throttling, errors, events), a self-contained HTML page with SVG charts, and a PNG of the same charts
    when matplotlib is installed for the Python that runs the module. File names contain the namespace
    and the start time, for example C(gpu-monitor_wabc123-default_20261129T033001Z.csv).
author:
  - haw_icc.llm contributors (@haw-icc)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
attributes:
  check_mode:
    support: partial
    description: Samples as usual (it only reads from the cluster) and returns the summary.
    details: In check mode no file is written and no directory is created; RV(files) names the files a real run would write.
  diff_mode:
    support: none
    description: Nothing is compared; the files are new on every run.
options:
  namespace:
    description: Namespace of the engine pod. Defaults to the namespace of the kubeconfig context.
    type: str
  selector:
    description: Label selector of the engine pod. Ignored when O(pod) is set.
    type: str
    default: app.kubernetes.io/component=engine,app.kubernetes.io/part-of=haw-icc-llm
  pod:
    description: Name of the pod to sample instead of the pod found by O(selector).
    type: str
  container:
    description: Container to run nvidia-smi in. Defaults to the first container of the pod.
    type: str
  nvidia_smi:
    description:
      - The nvidia-smi command in the container. Use a full path such as
        C(/usr/local/nvidia/bin/nvidia-smi) when it is not on the container's PATH.
    type: str
    default: nvidia-smi
  metrics:
    description: Read the engine's C(/metrics) at every sample.
    type: bool
    default: true
  metrics_port:
    description: Container port of the engine's HTTP server.
    type: int
    default: 8000
  metrics_path:
    description: Path of the Prometheus metrics of the engine.
    type: str
    default: /metrics
  metrics_url:
    description:
      - Read the engine metrics from this URL instead of through a port-forward to the pod, for example
        C(http://127.0.0.1:8000/metrics) of a port-forward that is already running.
    type: str
  interval:
    description: Seconds between the starts of two samples.
    type: float
    default: 5
  count:
    description:
      - Number of samples. Mutually exclusive with O(duration).
      - When neither is set, 12 samples are taken.
    type: int
  duration:
    description: Seconds to sample for. Mutually exclusive with O(count).
    type: float
  dest:
    description: Directory for the files, created when missing.
    type: path
    required: true
  formats:
    description: Which files to write. V(png) is skipped, with a note in C(errors) of RV(summary), without matplotlib.
    type: list
    elements: str
    choices: [csv, summary, html, png]
    default: [csv, summary, html, png]
  timeout:
    description: Seconds to wait for one exec or one C(/metrics) answer.
    type: int
    default: 20
  load:
    description:
      - Put the model under load while sampling, with M(haw_icc.llm.llm_health)'s load mode (non-streamed chat
        completions, run in a thread beside the sampling). A dictionary of its options C(service), C(port),
        C(model), C(question), C(max_tokens), C(requests) (default 8), C(concurrency), C(api_key_secret),
        C(api_key_secret_key) and C(timeout).
      - Without C(service), the load goes to the Service of the engine Deployment that O(selector) finds (it has
        the Deployment's name), with the API key that engine reads from its Secret.
      - The figures are returned as RV(load); a failed load is RV(load_error), and the samples are written all
        the same. Not run in check mode.
    type: dict
  load_grace:
    description: Seconds the load may run on after the last sample before it counts as failed.
    type: float
    default: 300
notes:
  - The account needs C(pods/exec) and C(pods/portforward) in the namespace; ICC students have both in
    their own namespace.
  - The first sample fails the module when nvidia-smi is missing in the container, sees no GPU, cannot
    reach the driver or prints something else than its CSV; later failures (a pod being replaced) are
    recorded per sample.
"""

EXAMPLES = r"""
- name: Sample the vLLM pod every 5 seconds for 2 minutes
  haw_icc.llm.gpu_monitor_sample:
    namespace: wabc123-default
    selector: app.kubernetes.io/name=vllm
    interval: 5
    duration: 120
    dest: "{{ playbook_dir }}/monitor"
  register: gpu

- name: Show the summary
  ansible.builtin.debug:
    var: gpu.summary_lines
"""

RETURN = r"""
files:
  description: Paths of the files written (or that would be written in check mode), by kind.
  returned: always
  type: dict
  sample:
    csv: /home/me/monitor/gpu-monitor_wabc123-default_20261129T033001Z.csv
    summary: /home/me/monitor/gpu-monitor_wabc123-default_20261129T033001Z.summary.json
    html: /home/me/monitor/gpu-monitor_wabc123-default_20261129T033001Z.html
    png: /home/me/monitor/gpu-monitor_wabc123-default_20261129T033001Z.png
rows:
  description: Number of CSV rows (one per sample and GPU, one per sample without GPU data).
  returned: always
  type: int
  sample: 24
columns:
  description: The CSV columns, units in their names.
  returned: always
  type: list
  elements: str
summary:
  description:
    - Namespace, pods, first and last timestamp, sample counts; per GPU C(metrics) with min, mean and max
      of utilisation, memory, temperature, power and SM clock, C(peak_memory_used_mib), C(throttling);
      C(engine) with the state of C(/metrics) and min, mean and max of each engine figure;
      C(tokens_per_s); C(errors); C(events) such as pod restarts; C(files).
  returned: always
  type: dict
load:
  description: The load's figures, as M(haw_icc.llm.llm_health) returns them in its C(load).
  returned: O(load) was given and the load finished
  type: dict
load_error:
  description: Why the load failed or did not finish in time.
  returned: O(load) was given and the load failed
  type: str
summary_lines:
  description: The summary in a few lines for people.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.haw_icc.llm.plugins.module_utils._gpu_monitor_task import RULES, argument_spec, run
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def main():
    module = IccModule(argument_spec=argument_spec(), supports_check_mode=True, **RULES)
    module.run(run)


if __name__ == "__main__":
    main()
