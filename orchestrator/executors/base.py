"""The executor's port: what the engine asks of whatever runs operations on hosts.

`AnsibleExecutor` (executors/ansible.py, the one module that owns the Ansible boundary) implements it.
A batch is operations that share one implementation file, run together; each result is keyed by the
request's inventory alias. `cancel` set: stop the batch soon (its operations fail as cancelled);
`timeout`: seconds before the batch is stopped as failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from orchestrator.executors.inventory import OperationRequest
from orchestrator.executors.results import OperationResult, TaskEvent

EventSink = Callable[[TaskEvent], None]


class Executor(Protocol):
    def run_batch(self, requests: list[OperationRequest], on_event: EventSink | None = None,
                  cancel: threading.Event | None = None,
                  timeout: float | None = None) -> dict[str, OperationResult]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...
