"""Stand-ins for the PyCOMPSs API when the COMPSs runtime is absent.

``task`` accepts the same keyword arguments as ``pycompss.api.task.task`` and leaves the function as it is, so
every "task" runs inline, in order; ``compss_wait_on`` returns its arguments unchanged. With them the
application runs sequentially with plain ``python``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class task:
    """No-op replacement for ``@task(...)``: the decorated function runs inline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def compss_wait_on(*objs: Any, **kwargs: Any) -> Any:
    """Identity replacement for ``compss_wait_on``: one argument back as is, several as a list."""
    if len(objs) == 1:
        return objs[0]
    return list(objs)
