"""Ansible callback of orch's long-lived worker: every task result goes to the parent as it happens,
in the shape ansible-runner gives its events (so one reader serves both)."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: orch_events
    type: notification
    short_description: task results to orch
    description: Writes each task result as a JSON line on the file descriptor ORCH_PROTOCOL_FD.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "orch_events"
    CALLBACK_NEEDS_ENABLED = True

    def _emit(self, event: str, result=None) -> None:
        data = {}
        if result is not None:
            data = {"host": result._host.get_name(), "task": result._task.get_name(), "res": result._result,
                    "ignore_errors": bool(result._task.ignore_errors)}
        line = json.dumps({"id": int(os.environ.get("ORCH_REQUEST_ID", "0")),
                           "event": {"event": event, "event_data": data}}, default=str)
        os.write(int(os.environ["ORCH_PROTOCOL_FD"]), (line + "\n").encode())

    def v2_runner_on_ok(self, result) -> None:
        self._emit("runner_on_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._emit("runner_on_failed", result)

    def v2_runner_on_unreachable(self, result) -> None:
        self._emit("runner_on_unreachable", result)

    def v2_runner_on_skipped(self, result) -> None:
        self._emit("runner_on_skipped", result)

    def v2_playbook_on_stats(self, stats) -> None:
        self._emit("playbook_on_stats")
