"""Secret inputs in the store: sealed with the master key, never kept in clear.

orch keeps a deployment's topology inputs and each execution's workflow inputs, because undeploy,
`deploy --resume` and `run --resume` need them again, without asking the user. An input whose
name looks secret (password, token, private_key, ...) is kept encrypted with the master key that
encrypts private keys ($ORCH_HOME/master.key, 0600) and bound to its name; what is shown to people
(`orch executions`) says `<redacted>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.credentials import masterkey

SECRET_NAME = re.compile(r"(password|passwd|secret|token|credential|private_key)", re.IGNORECASE)
SEALED = "orch-sealed"  # {"orch-sealed": "<base64 of nonce + AES-GCM ciphertext>"}
SHOWN = "<redacted>"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _associated(name: str) -> bytes:
    return f"orch input {name}".encode()


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED}


def seal(home: Path, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as the store keeps them (the master key is made on first need)."""
    if not any(is_secret_name(k) for k in inputs):
        return dict(inputs)
    key = masterkey.load_or_create(home)
    return {k: ({SEALED: key.encrypt(json.dumps(v).encode(), _associated(k))} if is_secret_name(k) else v)
            for k, v in inputs.items()}


def unseal(home: Path, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as given. A value written as the bare placeholder (by an older orch) is dropped: the
    input counts as not given rather than being replayed as its own placeholder."""
    values: dict[str, Any] = {}
    key = masterkey.load(home) if any(_is_sealed(v) for v in stored.values()) else None
    for k, v in stored.items():
        if key is not None and _is_sealed(v):
            values[k] = json.loads(key.decrypt(v[SEALED], _associated(k), f"input '{k}'"))
        elif not (is_secret_name(k) and v == SHOWN):
            values[k] = v
    return values


def shown(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as shown to people."""
    return {k: (SHOWN if _is_sealed(v) or is_secret_name(k) else v) for k, v in stored.items()}
