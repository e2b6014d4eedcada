"""TEST DOUBLE of an eFlows4HPC image-creation service (the real one builds container images on a
build farm, which cannot run here). It speaks the protocol orch's ImageCreation `service` backend uses:

    POST /build/                   {machine, workflow, step_id, force} -> 201 {"id": N}
    GET  /build/<id>               -> {"status": "BUILDING"} once, then {"status": "FINISHED", "filename": ...}
                                      (or, made with fail_with=MESSAGE, {"status": "FAILED", "message": MESSAGE})
    GET  /images/download/<file>   -> the image archive

and serves an image made from the repository's example workflow (application + kernels + a manifest
that says it came from this double). Listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "wordcount"


def _image_bytes(machine: dict, workflow: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(WORKFLOW / "app", arcname="./app", filter=_no_cache)
        tar.add(WORKFLOW / "kernels" / "wordcount_kernels", arcname="./site-packages/wordcount_kernels",
                filter=_no_cache)
        manifest = json.dumps({"image": workflow, "machine": machine, "built_by": "image-service test double"})
        info = tarfile.TarInfo("./manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest.encode()))
    return buffer.getvalue()


def _no_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info


class ImageServiceDouble:
    def __init__(self, fail_with: str = "") -> None:
        """fail_with: every build ends FAILED with this message (a service that cannot build the image)."""
        self.fail_with = fail_with
        self.builds: dict[int, dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # http.server's naming
                if self.path.rstrip("/") != "/build":
                    return self._json(404, {"message": "not found"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with double.lock:
                    build_id = len(double.builds) + 1
                    double.builds[build_id] = {"request": body, "polls": 0}
                    double.requests.append(body)
                return self._json(201, {"id": build_id})

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "build" and parts[1].isdigit():
                    with double.lock:
                        build = double.builds.get(int(parts[1]))
                        if build is None:
                            return self._json(404, {"message": "no such build"})
                        build["polls"] += 1
                        if build["polls"] < 2:
                            return self._json(200, {"status": "BUILDING"})
                    if double.fail_with:
                        return self._json(200, {"status": "FAILED", "message": double.fail_with})
                    return self._json(200, {"status": "FINISHED", "filename": f"image-{parts[1]}.tar.gz",
                                            "image_id": f"image-{parts[1]}"})
                if len(parts) == 3 and parts[:2] == ["images", "download"]:
                    build_id = int(parts[2].removeprefix("image-").removesuffix(".tar.gz"))
                    request = double.builds[build_id]["request"]
                    data = _image_bytes(request.get("machine") or {}, request.get("workflow", "workflow"))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/gzip")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                return self._json(404, {"message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ImageServiceDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


__all__ = ["ImageServiceDouble"]
