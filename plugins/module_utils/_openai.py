# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for OpenAI-compatible LLM servers (vLLM, TGI >= 1.4, llama.cpp), standard
library only, with errors that say what the server did wrong."""

from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.module_utils.six.moves import http_client

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError


class Response(object):
    def __init__(self, status, body, elapsed):
        self.status = status
        self.body = body
        self.elapsed = elapsed

    def json(self, what):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ProbeError("%s answered HTTP %d with something that is not JSON: %r"
                             % (what, self.status, self.body[:200]))


class OpenAIClient(object):
    """Blocking HTTP client bound to one base URL (http://host:port, no trailing /v1)."""

    def __init__(self, base_url, api_key=None, timeout=60.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError("base_url %r is not an http(s) URL." % base_url,
                             "Use e.g. http://127.0.0.1:8000.")
        self.base_url = base_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _connection(self):
        cls = http_client.HTTPSConnection if self._scheme == "https" else http_client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _headers(self, body):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer %s" % self.api_key
        return headers

    def request(self, method, path, payload=None):
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        conn = self._connection()
        start = time.monotonic()
        try:
            conn.request(method, self._prefix + path, body=body, headers=self._headers(body))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, data, time.monotonic() - start)
        except ConnectionRefusedError:
            raise ProbeError("Connection refused by %s." % self.base_url,
                             "Is the server running and listening on that port?")
        except (OSError, http_client.HTTPException) as exc:
            raise ProbeError("%s %s%s failed: %s" % (method, self.base_url, path, exc or type(exc).__name__))
        finally:
            conn.close()

    def checked(self, method, path, payload=None):
        resp = self.request(method, path, payload)
        if resp.status >= 400:
            raise ProbeError("%s %s answered HTTP %d: %s" % (method, path, resp.status,
                                                             _server_message(resp.body)),
                             _advice(resp.status))
        return resp

    def models(self):
        resp = self.checked("GET", "/v1/models")
        data = resp.json("GET /v1/models")
        ids = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)] \
            if isinstance(data, dict) else []
        return ids, resp.elapsed

    def chat(self, model, question, max_tokens=32):
        payload = {"model": model, "messages": [{"role": "user", "content": question}],
                   "max_tokens": max_tokens, "temperature": 0}
        resp = self.checked("POST", "/v1/chat/completions", payload)
        data = resp.json("POST /v1/chat/completions")
        try:
            text = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProbeError("The chat completion has no choices[0].message.content: %r"
                             % (str(data)[:200],))
        return text, data.get("usage") or {}, resp.elapsed


def _server_message(body):
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message", data)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(data)[:300]


def _advice(status):
    if status == 401:
        return "The server wants an API key: set api_key (from the engine's Secret)."
    if status == 404:
        return "Check the URL and the model name; the server does not know this path or model."
    if status >= 500:
        return "The server failed; look at its logs (haw_icc.llm.logs playbook)."
    return None
