"""Live progress of a deploy, undeploy or run on the terminal: one line as each operation starts and
ends, task lines with -v."""

from __future__ import annotations

import threading
import time

from rich.console import Console

from orchestrator.model import Step


class ProgressReporter:
    def __init__(self, console: Console, verbose: bool = False):
        self.console = console
        self.verbose = verbose
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()

    def step_started(self, step: Step, host: str) -> None:
        with self.lock:
            self.started[step.id] = time.monotonic()
            self.console.print(f"[cyan]▶[/] {step.node} [bold]{step.operation}[/] on {host}")

    def step_finished(self, step: Step, ok: bool, message: str | None) -> None:
        with self.lock:
            took = time.monotonic() - self.started.pop(step.id, time.monotonic())
            if ok:
                state = f" → {step.state}" if step.state else ""
                self.console.print(f"[green]✔[/] {step.node} {step.operation}{state} [dim]({took:.1f}s)[/]")
            else:
                self.console.print(f"[red]✘[/] {step.node} {step.operation}: {message}")

    def task_event(self, step: Step, event) -> None:
        if self.verbose:
            with self.lock:
                self.console.print(f"    [dim]{event.kind}: {event.task}[/]")
