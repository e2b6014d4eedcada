"""Start a deploy, an undeploy or a run and get its execution id back at once; follow and cancel it by id.

The work runs in a thread of this process with a store connection of its own. Its id is known once
its topology has loaded and its lock is held: bad input and a busy deployment are raised to the caller
of start_*, as they would be by the blocking call. A service starts work this way; any number of
readers follow it with `follow` (here or in another process), and `cancel` stops it from anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.api.core import Core
from orchestrator.api.records import DeployStart, Result
from orchestrator.engine.operations import LoginAs


@dataclass
class Work:
    """A deploy, undeploy or run going on in the background."""

    kind: str
    deployment: str
    execution_id: str
    cancel_event: threading.Event
    _thread: threading.Thread
    _box: dict[str, Any] = field(repr=False)

    def wait(self, timeout: float | None = None) -> Result | None:
        """Its Result once over (None if still going after `timeout`); re-raises what it raised."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None
        if "error" in self._box:
            raise self._box["error"]
        return self._box["result"]

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def cancel(self) -> None:
        """Stop starting operations, let running ones end, cancel its jobs (as Ctrl-C does)."""
        self.cancel_event.set()


class Background(Core):
    def _worker(self) -> Core:
        """A second API object on the same home: its own store connection, the same executor choice."""
        return type(self)(self.home, self.workers, self.given_executor, executor_factory=self.executor_factory,
                          store_factory=self.store_factory)

    def _start(self, kind: str, name: str, call: Callable[[Core, threading.Event, Callable[[str], None]], Result]
               ) -> Work:
        cancel = threading.Event()
        started = threading.Event()
        box: dict[str, Any] = {}

        def on_start(execution_id: str) -> None:
            box["id"] = execution_id
            started.set()

        def body() -> None:
            worker = self._worker()
            try:
                box["result"] = call(worker, cancel, on_start)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, by start_* or wait()
                box["error"] = exc
            finally:
                worker.close()
                started.set()

        thread = threading.Thread(target=body, name=f"orch-{kind}-{name}", daemon=True)
        thread.start()
        started.wait()
        if "id" not in box:
            thread.join()
            if "error" in box:
                raise box["error"]
            box["id"] = box["result"].execution_id
        return Work(kind, name, box["id"], cancel, thread, box)

    def start_deploy(self, name: str, path: str | None, inputs: Mapping[str, Any], *, resume: bool = False,
                     allow_remote_imports: bool = False, reporter=None) -> Work:
        def call(api, cancel, on_start) -> Result:
            def told(start: DeployStart) -> None:
                on_start(start.execution_id)

            return api.deploy(name, path, inputs, resume=resume, cancel=cancel, reporter=reporter,
                              allow_remote_imports=allow_remote_imports, on_start=told)

        return self._start("deploy", name, call)

    def start_registry_deploy(self, name: str, workflow: str, inputs: Mapping[str, Any], *,
                              version: str | None = None, reporter=None) -> Work:
        """deploy_from_registry in the background: the workflow's site file gives the inputs, `inputs` on top."""
        def call(api, cancel, on_start) -> Result:
            def told(start: DeployStart) -> None:
                on_start(start.execution_id)

            return api.deploy_from_registry(name, workflow, inputs, version=version, cancel=cancel,
                                            reporter=reporter, on_start=told)

        return self._start("deploy", name, call)

    def start_undeploy(self, name: str, reporter=None) -> Work:
        return self._start("undeploy", name,
                           lambda api, cancel, on_start: api.undeploy(name, cancel=cancel, reporter=reporter,
                                                                      on_start=on_start))

    def start_run(self, name: str, workflow: str | None, inputs: Mapping[str, Any], *, resume: str | None = None,
                  reporter=None, login: LoginAs | None = None, queued: str | None = None) -> Work:
        return self._start("run", name,
                           lambda api, cancel, on_start: api.run(name, workflow, inputs, resume=resume, cancel=cancel,
                                                                 reporter=reporter, on_start=on_start, login=login,
                                                                 queued=queued))
