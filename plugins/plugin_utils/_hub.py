# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side (plugin_utils): the model facts of the plan, read from the Hugging Face Hub with
``huggingface_hub`` on the machine that runs the playbook, with the user's token when one is set.

What is read, for a repository ``org/model`` (``_model_facts`` turns it into facts):

- ``HfApi.model_info`` (expand: gated, safetensors, gguf, sha): whether it exists, its gated state,
  its safetensors parameter counts by dtype, a GGUF repository's parameter count and context;
- ``HfApi.auth_check`` with the token, for a gated repository: whether the token may read it;
- ``hf_hub_download`` of ``config.json`` (into the user's Hugging Face cache): layers, heads, KV
  heads, head size, maximum position, torch_dtype, quantization_config;
- ``get_safetensors_metadata`` when the Hub's model info has no parameter counts.

The endpoint is ``icc_hf_endpoint``, else ``HF_ENDPOINT``, else https://huggingface.co. Each answer
is read once per run: the action plugins of one run (each host's runs in a process of its own) share
a cache file per repository, endpoint and token (a hash of them names it; mode 0600, in
``~/.cache/haw_icc_llm/hub``, kept for the run that wrote it). Offline (``HF_HUB_OFFLINE``), without
``huggingface_hub`` or with the Hub unreachable, the status is ``unreachable`` and the plan falls
back to its table estimate, with one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _model_facts, _plan

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT = 10
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "haw_icc_llm", "hub")
# A cache file of another run (another ansible-playbook process) is read again after this long.
CACHE_MAX_AGE = 6 * 3600


def endpoint(inputs):
    value = inputs.get("icc_hf_endpoint", "") or os.environ.get("HF_ENDPOINT", "") or DEFAULT_ENDPOINT
    return str(value).rstrip("/")


def _run_id():
    # The action plugins of a run are forked from the one ansible-playbook process.
    return str(os.getppid())


def _cache_path(url, repo, secret):
    key = hashlib.sha256(json.dumps([url, repo, hashlib.sha256(secret.encode()).hexdigest()]).encode()).hexdigest()
    return os.path.join(CACHE_DIR, key[:32] + ".json")


def _cached(path):
    try:
        with open(path) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    if entry.get("run") != _run_id() or time.time() - float(entry.get("time", 0)) > CACHE_MAX_AGE:
        return None
    return entry.get("facts")


def _store(path, facts):
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"run": _run_id(), "time": time.time(), "facts": facts}, f)
        os.replace(tmp, path)
        now = time.time()
        for entry in os.scandir(CACHE_DIR):  # the files of runs long gone
            if entry.name.endswith(".json") and now - entry.stat().st_mtime > CACHE_MAX_AGE:
                os.unlink(entry.path)
    except OSError:
        pass  # a cache that cannot be written only costs a second read


def model_facts(inputs, engine, model):
    """The facts of ``model`` (``_model_facts.facts_of``) for the host's inputs, read once per run."""
    url = endpoint(inputs)
    repo = _model_facts.repository(model)
    if not _engine.is_model_id(repo):
        # Not a model id: the engine rules refuse it; nothing to ask the Hub.
        return _model_facts.facts_of(repo, endpoint=url, status="invalid")
    secret = _plan.hf_token(inputs, engine)
    path = _cache_path(url, repo, secret)
    facts = _cached(path)
    if facts is None:
        facts = read(repo, secret, url)
        _store(path, facts)
    return facts


def _status_of(exc, errors):
    """The status of an exception of huggingface_hub: not_found, no_access, bad_token or unreachable
    (no answer: offline, no connection, a time-out, a server error); None for one the reader
    handles itself."""
    if isinstance(exc, errors.GatedRepoError):
        return "no_access"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return "not_found"
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    if isinstance(exc, errors.HfHubHTTPError):
        return "bad_token" if code == 401 else "unreachable" if code is None or code >= 500 or code == 429 else None
    return "unreachable"


def read(repo, secret="", url=DEFAULT_ENDPOINT):
    """Read the Hub's answers about ``repo`` (no cache). Never raises for what the Hub answers."""
    try:
        import httpx2
        from huggingface_hub import HfApi, errors
    except ImportError as exc:
        return _model_facts.facts_of(repo, endpoint=url, status="unreachable",
                                     detail="the Python package huggingface_hub is not installed (%s)" % exc)
    api = HfApi(endpoint=url, token=secret or False)
    # What huggingface_hub raises for an answer (HfHubHTTPError) and for none.
    hub_errors = (errors.HfHubHTTPError, httpx2.TransportError, errors.OfflineModeIsEnabled,
                  errors.LocalEntryNotFoundError)

    gated = False

    def failed(exc):
        return _model_facts.facts_of(repo, endpoint=url, status=_status_of(exc, errors) or "unreachable",
                                     detail=_short(exc), gated=gated)

    try:
        info = api.model_info(repo, expand=["gated", "safetensors", "gguf", "sha"], timeout=TIMEOUT)
        gated = info.gated or False
        if gated and not secret:
            return _model_facts.facts_of(repo, endpoint=url, status="no_token", gated=gated)
        if gated:
            api.auth_check(repo)
    except hub_errors as exc:
        return failed(exc)
    except ValueError as exc:  # huggingface_hub's HFValidationError: not a repository id
        return _model_facts.facts_of(repo, endpoint=url, status="invalid", detail=_short(exc))
    params = dict(info.safetensors.parameters or {}) if info.safetensors else {}
    gguf = info.gguf if isinstance(info.gguf, dict) else None
    config = None
    if not gguf:
        try:
            path = api.hf_hub_download(repo, "config.json", revision=info.sha, etag_timeout=TIMEOUT)
            with open(path) as f:
                config = json.load(f)
            if not params:
                meta = api.get_safetensors_metadata(repo, revision=info.sha)
                params = dict(meta.parameter_count or {})
        except (errors.EntryNotFoundError, errors.NotASafetensorsRepoError, errors.SafetensorsParsingError,
                ValueError):
            pass  # no config.json or no safetensors: the fallback table and the name step in
        except hub_errors as exc:
            if _status_of(exc, errors) is not None:
                return failed(exc)
    return _model_facts.facts_of(repo, config, params, gated, url, gguf=gguf)


def _short(exc):
    """The first line of an error, without the URL (it repeats the endpoint and the model)."""
    text = str(exc).strip().splitlines()
    line = (text[0] if text else "").split(" for url ", 1)[0].rstrip(".")
    return "%s: %s" % (type(exc).__name__, line)
