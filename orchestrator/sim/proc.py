"""Running the machine's tools (ip, ssh-keygen, nsenter ...) for the site."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from orchestrator.sim.errors import SimError

# The tools live in sbin, which a non-login root shell or a venv may not have on PATH.
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tool_env() -> dict[str, str]:
    """Our environment with the sbin directories on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{TOOL_PATH}:{env['PATH']}" if env.get("PATH") else TOOL_PATH
    return env


def host_env() -> dict[str, str]:
    """A clean environment for commands inside a host: nothing of our venv leaks in."""
    return {"PATH": TOOL_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capturing text output; SimError (with its stderr) when it fails and check."""
    try:
        done = subprocess.run(
            list(argv),
            check=False,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else tool_env(),
        )
    except FileNotFoundError as exc:
        raise SimError(f"{argv[0]} not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SimError(f"{' '.join(argv)} did not finish in {timeout:g} s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise SimError(f"{' '.join(argv)} failed ({done.returncode}): {detail}")
    return done
