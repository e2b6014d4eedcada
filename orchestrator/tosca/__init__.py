"""Load: TOSCA in (YAML or CSAR), the grammar-free model out (orchestrator.model).

`load`, `check` and `validate` are imported on first use: the loader brings tosca-parser (~0.5 s of
imports), which a command that reads only a CSAR's layout or an input file does not need."""

from __future__ import annotations

from typing import Any

__all__ = ["check", "load", "validate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from orchestrator.tosca import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'orchestrator.tosca' has no attribute {name!r}")
