"""Plan: a Topology (and a workflow name) in, a DAG of steps out. Nothing here talks to Ansible or the store."""

from orchestrator.plan.lifecycle import install_plan, uninstall_plan

__all__ = ["install_plan", "uninstall_plan"]
