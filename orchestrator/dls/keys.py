"""The SSH key of a transfer, read at run time and kept in memory as a paramiko key object.

Where a key comes from, in this order:
- `key_file`: a private key FILE on this machine (a host whose key is a file, like the simulated site's);
- `vault_id` with VAULT_ADDR set (and VAULT_TOKEN) in the environment: the eFlows4HPC DLS's own place, a
  KV version 2 secret at `secret/ssh-credentials/<vault_id>`, its key `privateKey`;
- `vault_id` otherwise: the credential of that name in orch's credential store under $ORCH_HOME (itself
  local files, or orch's Vault when ORCH_VAULT_ADDR is set: orchestrator/credentials).

The key's text is never written anywhere: not to a file, not to the run's conf, XCom or logs. Errors name the
credential or the file, never key material.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import paramiko

from orchestrator.home import default_home

DLS_VAULT_MOUNT = "secret"
DLS_VAULT_PREFIX = "ssh-credentials"
DLS_VAULT_KEY = "privateKey"

# every private key type paramiko reads (an orch credential is ed25519; a DLS one is often RSA)
_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class KeyProblem(Exception):
    """No usable key: the message names where it was looked for (safe to show and log)."""


def load_key(vault_id: str | None = None, key_file: str | None = None,
             environ: Mapping[str, str] | None = None) -> paramiko.PKey:
    """The private key named by key_file or vault_id (see the module's docstring)."""
    env = os.environ if environ is None else environ
    if key_file:
        return _from_file(Path(str(key_file)).expanduser())
    if not vault_id:
        raise KeyProblem("no SSH key given: set vault_id (a credential) or key_file (a key file on this machine)")
    vault_id = str(vault_id)
    if env.get("VAULT_ADDR", "").strip():
        return parse_key(_from_dls_vault(vault_id, env), f"the Vault secret {DLS_VAULT_PREFIX}/{vault_id}")
    return parse_key(_from_orch_store(vault_id, env), f"orch credential '{vault_id}'")


def parse_key(text: str | bytes, what: str) -> paramiko.PKey:
    """A paramiko key from a private key's text (OpenSSH or PEM), whichever type it is."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    for kind in _KEY_TYPES:
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    raise KeyProblem(f"{what} is not a private key paramiko can read (ed25519, ECDSA or RSA, without passphrase)")


def _from_file(path: Path) -> paramiko.PKey:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    return parse_key(text, f"the key file {path}")


def _from_orch_store(name: str, env: Mapping[str, str]) -> bytes:
    from orchestrator.credentials import CredentialError, CredentialStore

    home = Path(env["ORCH_HOME"]) if env.get("ORCH_HOME") else default_home()
    try:
        return CredentialStore(home).private_key(name)
    except CredentialError as exc:
        raise KeyProblem(f"vault_id '{name}': {exc}") from None


def _from_dls_vault(name: str, env: Mapping[str, str]) -> str:
    address = env["VAULT_ADDR"].strip()
    token = env.get("VAULT_TOKEN", "").strip()
    if not token:
        raise KeyProblem(f"vault_id '{name}': VAULT_ADDR is set ({address}) but VAULT_TOKEN is not")
    try:
        import hvac
        import requests
    except ImportError:
        raise KeyProblem("VAULT_ADDR is set but the Python package 'hvac' is not installed") from None
    client = hvac.Client(url=address, token=token, timeout=10)
    where = f"{DLS_VAULT_MOUNT}/{DLS_VAULT_PREFIX}/{name}"
    try:
        reply: Any = client.secrets.kv.v2.read_secret_version(
            path=f"{DLS_VAULT_PREFIX}/{name}", mount_point=DLS_VAULT_MOUNT, raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        raise KeyProblem(f"vault_id '{name}': no secret at {where} in Vault at {address}") from None
    except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden):
        raise KeyProblem(f"vault_id '{name}': Vault at {address} refused the token for {where}") from None
    except hvac.exceptions.VaultError as exc:
        raise KeyProblem(f"vault_id '{name}': Vault at {address}: {type(exc).__name__} reading {where}") from None
    except requests.exceptions.RequestException as exc:
        raise KeyProblem(f"vault_id '{name}': cannot reach Vault at {address} ({type(exc).__name__})") from None
    data = ((reply or {}).get("data") or {}).get("data") or {}
    text = data.get(DLS_VAULT_KEY)
    if not isinstance(text, str) or not text.strip():
        raise KeyProblem(f"vault_id '{name}': the secret at {where} has no '{DLS_VAULT_KEY}'")
    return text
