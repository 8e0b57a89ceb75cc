"""A local double of the Hugging Face Hub's HTTP API, for the sandbox (HF_ENDPOINT / icc_hf_endpoint).

It answers the requests that the real ``huggingface_hub`` client makes for the preflight's model facts
(plugins/plugin_utils/_hub.py), with the Hub's status codes and X-Error-Code headers, so that the
client raises what it raises against huggingface.co:

- ``GET /api/models/<repo>[/revision/<rev>]``: model info (id, sha, gated, private, safetensors
  parameter counts, gguf, siblings); 404 ``RepoNotFound`` for an unknown repository;
- ``GET /api/models/<repo>/auth-check``: 200 when the token may read the repository, 403 ``GatedRepo``
  for a gated one it may not, 401 without a token;
- ``HEAD``/``GET /<repo>/resolve/<rev>/<file>``: ``config.json`` (from tests/cluster/models) and
  ``model.safetensors`` (a synthesized header with the parameter counts; ranged reads), with
  X-Repo-Commit and ETag; 404 ``EntryNotFound``, 403 ``GatedRepo``;
- a token that does not start with ``hf_`` is refused with 401 "Invalid credentials in Authorization
  header", as the Hub refuses a malformed one;
- ``POST /_double/grant`` ``{"repo": ..., "token": ...}``: grant a token a gated repository (what
  accepting its license on huggingface.co does); ``GET /_double/requests``: how many requests of each
  kind each repository got (``model_info <repo>``, ...; tests count the reads of a run).

The repositories are in tests/cluster/hub/models.json. Tokens are never logged.

    python tests/cluster/hub_double.py --port 18090 [--log FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HERE = pathlib.Path(__file__).resolve().parent
INDEX = HERE / "hub" / "models.json"
STORE = HERE / "models"
BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def load(index=INDEX, store=STORE):
    repos = {}
    for repo, facts in json.loads(index.read_text()).items():
        if repo.startswith("_"):
            continue
        config = store / repo / "config.json"
        body = config.read_bytes() if config.exists() else None
        sha = hashlib.sha1((repo + "\n").encode() + (body or b"")).hexdigest()
        repos[repo] = dict(facts, config=body, sha=sha, access=set(facts.get("access") or ()))
    return repos


def safetensors_file(counts):
    """A model.safetensors with one tensor per dtype holding that many parameters: its header and
    the full file size (the data is never served)."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for dtype, count in sorted(counts.items()):
        size = count * BYTES[dtype]
        header["params.%s" % dtype.lower()] = {"dtype": dtype, "shape": [count], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    head = struct.pack("<Q", len(raw)) + raw
    return head, len(head) + offset


class Hub(object):
    def __init__(self, repos):
        self.repos = repos
        self.lock = threading.Lock()
        self.requests = {}

    def count(self, what):
        with self.lock:
            self.requests[what] = self.requests.get(what, 0) + 1


def handler_for(hub, log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # the request line only: never a header (tokens)
            if log:
                log.write("%s %s\n" % (self.command, self.path.split("?", 1)[0]))
                log.flush()

        def _send(self, code, body=b"", headers=None, content_type="application/json"):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, code, error_code=None, message=None):
            headers = {}
            if error_code:
                headers["X-Error-Code"] = error_code
            if message:
                headers["X-Error-Message"] = message
            self._send(code, {"error": message or error_code or "error"}, headers)

        def _token(self):
            auth = self.headers.get("Authorization") or ""
            return auth[7:].strip() if auth.startswith("Bearer ") else ""

        def _may_read(self, repo):
            """None when the token may read the repository, else the error it gets."""
            token = self._token()
            if token and not token.startswith("hf_"):
                return (401, None, "Invalid credentials in Authorization header")
            facts = hub.repos[repo]
            if facts.get("gated") and token not in facts["access"]:
                if not token:
                    return (401, "GatedRepo", "Access to model %s is restricted. You must have access to it and be "
                                              "authenticated to access it. Please log in." % repo)
                return (403, "GatedRepo", "Access to model %s is restricted and you are not in the authorized list. "
                                          "Visit https://huggingface.co/%s to ask for access." % (repo, repo))
            return None

        def _repo_of(self, parts):
            for n in (2, 1):
                repo = "/".join(parts[:n])
                if repo in hub.repos:
                    return repo, parts[n:]
            return None, parts[2:]

        def do_POST(self):
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if path == "/_double/grant" and body.get("repo") in hub.repos and body.get("token"):
                hub.repos[body["repo"]]["access"].add(body["token"])
                return self._send(200, {"granted": body["repo"]})
            return self._error(400, None, "unknown request")

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            parts = [p for p in path.split("/") if p]
            if path == "/_double/requests":
                with hub.lock:
                    return self._send(200, dict(hub.requests))
            if parts[:2] == ["api", "models"]:
                return self._api(parts[2:])
            if "resolve" in parts:
                return self._resolve(parts)
            return self._error(404, None, "not found")

        def _api(self, parts):
            repo, rest = self._repo_of(parts)
            token = self._token()
            if token and not token.startswith("hf_"):
                return self._error(401, None, "Invalid credentials in Authorization header")
            if repo is None:
                hub.count("model_info %s" % "/".join(parts[:2]))
                return self._error(404, "RepoNotFound", "Repository not found")
            facts = hub.repos[repo]
            if rest == ["auth-check"]:
                hub.count("auth_check %s" % repo)
                denied = self._may_read(repo)
                return self._error(*denied) if denied else self._send(200, {"ok": True})
            hub.count("model_info %s" % repo)
            info = {"id": repo, "modelId": repo, "author": repo.split("/", maxsplit=1)[0], "sha": facts["sha"], "private": False,
                    "gated": facts.get("gated") or False, "disabled": False,
                    "siblings": [{"rfilename": name} for name in self._files(facts)]}
            if facts.get("safetensors"):
                info["safetensors"] = {"parameters": facts["safetensors"], "total": sum(facts["safetensors"].values())}
            if facts.get("gguf"):
                info["gguf"] = facts["gguf"]
            return self._send(200, info)

        @staticmethod
        def _files(facts):
            names = []
            if facts.get("config") is not None:
                names.append("config.json")
            if facts.get("safetensors") or facts.get("safetensors_file"):
                names.append("model.safetensors")
            return names

        def _resolve(self, parts):
            at = parts.index("resolve")
            repo = "/".join(parts[:at])
            filename = "/".join(parts[at + 2:])
            hub.count("resolve %s %s" % (repo, filename))
            if repo not in hub.repos:
                return self._error(404, "RepoNotFound", "Repository not found")
            denied = self._may_read(repo)
            if denied:
                return self._error(*denied)
            facts = hub.repos[repo]
            headers = {"X-Repo-Commit": facts["sha"]}
            if filename == "config.json" and facts.get("config") is not None:
                body = facts["config"]
                headers["ETag"] = '"%s"' % hashlib.sha1(body).hexdigest()
                return self._send(200, body, headers)
            counts = facts.get("safetensors") or facts.get("safetensors_file")
            if filename == "model.safetensors" and counts:
                head, size = safetensors_file(counts)
                headers["ETag"] = '"%s"' % hashlib.sha256(head).hexdigest()
                if self.command == "HEAD":
                    self.send_response(200)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                    return None
                rng = self.headers.get("Range") or ""
                end = len(head) - 1
                if rng.startswith("bytes=0-"):
                    end = min(end, int(rng[len("bytes=0-"):] or end))
                headers["Content-Range"] = "bytes 0-%d/%d" % (end, size)
                return self._send(206, head[:end + 1], headers, "application/octet-stream")
            return self._error(404, "EntryNotFound", "Entry not found")

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    hub = Hub(load())
    log = open(args.log, "a") if args.log else None
    server = ThreadingHTTPServer((args.host, args.port), handler_for(hub, log))
    server.daemon_threads = True
    sys.stdout.write("hub double on http://%s:%d (%d repositories)\n" % (args.host, server.server_port, len(hub.repos)))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
