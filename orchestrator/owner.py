"""Who holds a lock: a token naming one piece of work, not a process.

host, pid and the kernel's start time of that pid name a process even after pid reuse; the random
part tells apart two pieces of work of one process (two executions run by one service). Liveness can
only be judged on the holder's own host: a token from another host is taken as live until released.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from orchestrator.scratch import process_start_time


@dataclass(frozen=True)
class OwnerToken:
    host: str
    pid: int
    start: str
    nonce: str

    @classmethod
    def new(cls) -> OwnerToken:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start_time(pid) or "", secrets.token_hex(6))

    @classmethod
    def parse(cls, text: str) -> OwnerToken | None:
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.start}/{self.nonce}"

    def is_live(self) -> bool:
        if self.host != socket.gethostname():
            return True  # cannot be judged from here
        return bool(self.start) and process_start_time(self.pid) == self.start
