"""VaultTestDouble: a TEST DOUBLE of HashiCorp Vault, not Vault. Only for tests/credentials.

No Vault server can be installed here, so this is a small http.server on 127.0.0.1 (ephemeral port)
implementing just the KV version 2 endpoints hvac calls for orch's Vault backend, with Vault's
status codes and JSON shapes:

  GET    /v1/<mount>/data/<path>       read the latest version (404 when absent or deleted)
  POST   /v1/<mount>/data/<path>       write a new version; honours options.cas (0: only if absent)
  DELETE /v1/<mount>/metadata/<path>   delete every version and the metadata (204)
  LIST   /v1/<mount>/metadata/<path>   keys under a folder (also GET ...?list=true)

Every request must carry X-Vault-Token equal to the double's token (else 403 "permission denied");
an unknown mount is 404 like an unmounted path. Nothing is encrypted or persisted; no policies,
leases, namespaces or versions beyond the latest are kept.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class _Entry:
    data: dict[str, Any]
    version: int


@dataclass
class VaultTestDouble:
    token: str
    mount: str = "secret"
    secrets: dict[str, _Entry] = field(default_factory=dict)  # path -> latest version
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), for assertions
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def address(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        double = self

        class Handler(_Handler):
            vault = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="vault-test-double", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    vault: VaultTestDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self._handle("LIST" if query.get("list") == ["true"] else "GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_LIST(self) -> None:
        self._handle("LIST")

    def _handle(self, method: str) -> None:
        vault = self.vault
        path = unquote(urlsplit(self.path).path)
        body = self._body()
        vault.requests.append((method, path))
        if self.headers.get("X-Vault-Token") != vault.token:
            return self._reply(403, {"errors": ["permission denied"]})
        prefix = f"/v1/{vault.mount}/"
        if not path.startswith(prefix):
            return self._reply(404, {"errors": [f"no handler for route \"{path[4:]}\""]})
        kind, _, secret_path = path[len(prefix):].partition("/")
        with vault._lock:
            if kind == "data" and method == "GET":
                return self._read(secret_path)
            if kind == "data" and method == "POST":
                return self._write(secret_path, body)
            if kind == "metadata" and method == "DELETE":
                vault.secrets.pop(secret_path, None)
                return self._reply(204, None)
            if kind == "metadata" and method == "LIST":
                return self._list(secret_path)
        return self._reply(405, {"errors": [f"{method} on {path} is not implemented by the test double"]})

    def _read(self, path: str) -> None:
        entry = self.vault.secrets.get(path)
        if entry is None:
            return self._reply(404, {"errors": []})
        self._reply(200, {"data": {"data": entry.data, "metadata": _metadata(entry.version)}})

    def _write(self, path: str, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return self._reply(400, {"errors": ["no data provided"]})
        current = self.vault.secrets.get(path)
        cas = (body.get("options") or {}).get("cas")
        if cas is not None and cas != (current.version if current else 0):
            return self._reply(400, {"errors": ["check-and-set parameter did not match the current version"]})
        entry = _Entry(dict(body["data"]), (current.version if current else 0) + 1)
        self.vault.secrets[path] = entry
        self._reply(200, {"data": _metadata(entry.version)})

    def _list(self, folder: str) -> None:
        folder = folder.strip("/")
        start = f"{folder}/" if folder else ""
        keys = sorted({p[len(start):].split("/", 1)[0] + ("/" if "/" in p[len(start):] else "")
                       for p in self.vault.secrets if p.startswith(start)})
        if not keys:
            return self._reply(404, {"errors": []})
        self._reply(200, {"data": {"keys": keys}})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        try:
            return json.loads(self.rfile.read(length))
        except ValueError:
            return None

    def _reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _metadata(version: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"created_time": now, "deletion_time": "", "destroyed": False, "version": version,
            "custom_metadata": None}
