"""A loopback HTTP server that answers the KFP v2beta1 REST calls `kfp.Client` makes to submit
and follow a run (health, experiments, create run, get run), recording every request. No
Kubeflow cluster runs here; this is the protocol's far end, not a mock of our code."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class KfpServer:
    """Runs move through `states` on each GET (the last one sticks)."""

    states: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    requests: list[Request] = field(default_factory=list)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                server.requests.append(Request(method, url.path, parse_qs(url.query), body))
                status, payload = server.route(method, url.path, parse_qs(url.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def created_runs(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == f"{API}/runs"]

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == f"{API}/healthz":
            return 200, {"commit_sha": "loopback", "tag_name": "2.5.0", "multi_user": False}
        if path == f"{API}/experiments":
            if method == "POST":
                experiment = {
                    **body,
                    "experiment_id": str(uuid.uuid4()),
                    "storage_state": "AVAILABLE",
                }
                self.experiments[experiment["experiment_id"]] = experiment
                return 200, experiment
            wanted = _filter_value(query)
            found = [e for e in self.experiments.values() if wanted in (None, e["display_name"])]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == f"{API}/runs":
            run = {**body, "run_id": str(uuid.uuid4()), "state": self.states[0], "polls": 0}
            self.runs[run["run_id"]] = run
            return 200, _public(run)
        if method == "GET" and path.startswith(f"{API}/runs/"):
            run = self.runs.get(path.rsplit("/", 1)[1])
            if run is None:
                return 404, {"error": "run not found", "code": 5}
            run["polls"] += 1
            run["state"] = self.states[min(run["polls"], len(self.states) - 1)]
            return 200, _public(run)
        return 404, {"error": f"{method} {path} is not answered here", "code": 5}


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "polls"}


def _filter_value(query: dict[str, list[str]]) -> str | None:
    """The display name a list call filters on (kfp.Client sends a JSON filter)."""
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    predicates = json.loads(raw).get("predicates", [])
    for p in predicates:
        if p.get("key") in ("display_name", "name"):
            return p.get("string_value") or p.get("stringValue")
    return None
