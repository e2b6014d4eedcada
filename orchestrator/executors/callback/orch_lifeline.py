"""Ansible callback that only ties `ansible-playbook` to orch's life (orchestrator/executors/lifeline.py):
enabled for the ansible-runner path, whose `ansible-playbook` runs in its own session under a pty."""

from __future__ import annotations

from ansible.plugins.callback import CallbackBase

from orchestrator.executors.lifeline import start_lifeline

DOCUMENTATION = """
    name: orch_lifeline
    type: aggregate
    short_description: ansible-playbook dies with orch
    description: Watches the orch process ORCH_PARENT_PID and kills this process tree once it is gone.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "orch_lifeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        start_lifeline()
