"""A real `orch serve` process on a loopback port, for the tests that need one (a restart, a browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`orch --home HOME serve --port PORT [extra...]`, its output in `log`; stopped by its pid."""

    def __init__(self, home: Path, log: Path, *extra: str):
        self.home, self.log, self.extra = home, log, extra
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", "--home", str(self.home), "serve", "--port", str(self.port),
                 *self.extra],
                cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                # a session of its own: on Linux the CPU is shared between sessions first, and the server
                # must not share its part with the clients that load it (they stand for other machines)
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("orch serve did not answer: " + self.log.read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


