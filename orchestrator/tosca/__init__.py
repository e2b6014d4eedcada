"""Load: TOSCA service templates (YAML or CSAR) into the grammar-free model, or a list of problems."""

from orchestrator.tosca.loader import load, validate

__all__ = ["load", "validate"]
