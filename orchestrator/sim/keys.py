"""Key material of a site, made once and kept across `down`/`up`: the client key, one
host key per host (so known_hosts stays right when a host is restarted) and Slurm's
munge key."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.sim.layout import SitePaths
from orchestrator.sim.proc import run
from orchestrator.sim.state import write_atomic


def _ed25519(path: Path, comment: str) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)


def ensure_client_key(paths: SitePaths, site: str) -> Path:
    paths.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ed25519(paths.client_key, f"orch-sim-{site}-client")
    return paths.client_key


def ensure_host_key(paths: SitePaths, site: str, host: str) -> Path:
    paths.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ed25519(paths.host_key(host), f"{site}-{host}-hostkey")
    return paths.host_key(host)


def public_key(private: Path) -> str:
    """'ssh-ed25519 AAAA...' without the comment."""
    return " ".join(Path(f"{private}.pub").read_text().split()[:2])


def ensure_munge_key(paths: SitePaths) -> Path:
    paths.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not paths.munge_key.exists():
        write_atomic(paths.munge_key, os.urandom(1024), mode=0o400)
    return paths.munge_key
