"""A local HTTP endpoint that answers as OpenSearch's APIs do, for the parts ctaoflow
uses, and records what it got. No OpenSearch server can run on these machines (no
package in any reachable registry): this is the nearest real thing for opensearch-py's
real client to talk to.

- ``POST /_bulk``: NDJSON action/source pairs; per item ``create`` answers 201 created,
  or 409 ``version_conflict_engine_exception`` when the index already holds the id;
  ``index`` answers 201 or 200 (updated). A document of an index matching
  ``ctaoflow-events-*`` is checked against the index template's strict mapping and
  refused (400 ``strict_dynamic_mapping_exception`` or ``mapper_parsing_exception``)
  as OpenSearch would refuse it.
- ``PUT /_index_template/<name>``, ``GET|PUT /_plugins/_ism/policies/<name>`` (with
  ``if_seq_no``/``if_primary_term`` for an update), ``GET /`` (server info).
- ``down = True``: every request answers 503; ``delay``: seconds each bulk request waits
  before it is applied (to kill a sender mid-request).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ctaoflow.monitoring.documents import schema

INT32 = 2**31


def mapping_errors(doc: dict[str, Any], properties: dict[str, Any]) -> list[str]:
    """What OpenSearch would refuse in ``doc`` under a strict mapping of these
    ``properties`` (types keyword, text, date, long, integer, float, boolean)."""
    errors = []
    for field, value in doc.items():
        if field not in properties:
            errors.append(f"strict_dynamic_mapping_exception: [{field}] not allowed")
            continue
        kind = properties[field]["type"]
        if value is None:
            continue
        if kind in ("keyword", "text"):
            ok = isinstance(value, str)
        elif kind == "date":
            ok = isinstance(value, str) and _date(value)
        elif kind in ("long", "integer"):
            ok = isinstance(value, int) and not isinstance(value, bool) and (
                kind == "long" or -INT32 <= value < INT32)
        elif kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = False
        if not ok:
            errors.append(f"mapper_parsing_exception: [{field}] of type [{kind}]: {value!r}")
    return errors


def _date(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class Endpoint:
    """The server, its stored documents (index -> id -> source) and its request log."""

    def __init__(self, delay: float = 0.0) -> None:
        self.docs: dict[str, dict[str, dict]] = {}
        self.requests: list[dict[str, Any]] = []  # method, path, query, auth, body lines
        self.created: dict[str, int] = {}  # id -> times answered 201
        self.templates: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.down, self.delay = False, delay
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip
                    raw = gzip.decompress(raw)
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                auth = self.headers.get("Authorization", "")
                user = (base64.b64decode(auth.split()[1]).decode().split(":")[0]
                        if auth.startswith("Basic ") else None)
                with endpoint.lock:
                    endpoint.requests.append({"method": self.command, "path": parts.path,
                                              "query": query, "user": user,
                                              "body": raw.decode()})
                if endpoint.down:
                    return self._answer(503, {"error": "unavailable", "status": 503})
                status, body = endpoint.route(self.command, parts.path, query, raw)
                self._answer(status, body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the APIs --------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, Any]:
        if path in ("/_bulk",) or path.endswith("/_bulk"):
            return self.bulk(raw)
        if path.startswith("/_index_template/") and method == "PUT":
            self.templates[path.rsplit("/", 1)[1]] = json.loads(raw)
            return 200, {"acknowledged": True}
        if path.startswith("/_plugins/_ism/policies/"):
            return self.policy(method, path.rsplit("/", 1)[1], query, raw)
        if path == "/":
            return 200, {"name": "endpoint", "version": {"distribution": "opensearch",
                                                        "number": "2.19.0"}}
        return 404, {"error": f"no handler for {method} {path}", "status": 404}

    def policy(self, method: str, name: str, query: dict, raw: bytes) -> tuple[int, Any]:
        old = self.policies.get(name)
        if method == "GET":
            if old is None:
                return 404, {"error": {"type": "status_exception",
                                       "reason": "Policy not found"}, "status": 404}
            return 200, {"_id": name, "_seq_no": old["seq"], "_primary_term": 1,
                         "policy": old["body"]["policy"]}
        if old is not None and query.get("if_seq_no") != str(old["seq"]):
            return 409, {"error": {"type": "version_conflict_engine_exception"},
                         "status": 409}
        seq = 0 if old is None else old["seq"] + 1
        self.policies[name] = {"seq": seq, "body": json.loads(raw)}
        return (201 if old is None else 200), {"_id": name, "_seq_no": seq,
                                               "_primary_term": 1}

    def bulk(self, raw: bytes) -> tuple[int, Any]:
        if self.delay:
            time.sleep(self.delay)
        lines = [line for line in raw.decode().split("\n") if line.strip()]
        items, errors = [], False
        properties = schema()
        with self.lock:
            for action_line, source_line in zip(lines[::2], lines[1::2]):
                (op, meta), = json.loads(action_line).items()
                index, source = meta["_index"], json.loads(source_line)
                doc_id = meta.get("_id") or uuid.uuid4().hex  # an id OpenSearch makes up
                held = self.docs.setdefault(index, {})
                refused = (mapping_errors(source, properties)
                           if index.startswith("ctaoflow-events-") else [])
                base = {"_index": index, "_id": doc_id}
                if refused:
                    kind, reason = refused[0].split(": ", 1)
                    item = {**base, "status": 400, "error": {"type": kind, "reason": reason}}
                elif op == "create" and doc_id in held:
                    item = {**base, "status": 409, "error": {
                        "type": "version_conflict_engine_exception",
                        "reason": f"[{doc_id}]: version conflict, document already exists"}}
                else:
                    new = doc_id not in held
                    held[doc_id] = source
                    if new:
                        self.created[doc_id] = self.created.get(doc_id, 0) + 1
                    item = {**base, "_version": 1, "result": "created" if new else "updated",
                            "status": 201 if new else 200}
                errors = errors or item["status"] >= 300
                items.append({op: item})
        return 200, {"took": 1, "errors": errors, "items": items}

    # -- what tests look at ----------------------------------------------------------
    def all_docs(self, prefix: str = "ctaoflow-events-") -> dict[str, dict]:
        with self.lock:
            return {i: d for index, docs in self.docs.items() if index.startswith(prefix)
                    for i, d in docs.items()}

    def bulk_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].endswith("/_bulk")]
