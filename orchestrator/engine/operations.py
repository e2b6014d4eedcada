"""From a planned step to an executor request, and from the executor's result back to state:
late evaluation of inputs, where the operation runs, Yorc's variable conventions, outputs → attributes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from orchestrator.engine import jobs
from orchestrator.engine.evaluate import Context, evaluate
from orchestrator.executors import scripts
from orchestrator.executors.inventory import OperationRequest, Target, alias_for, connection_vars
from orchestrator.functions import FunctionError, compute_host
from orchestrator.model import LOCALHOST, ORCHESTRATOR, NodeTemplate, Operation, Step, Topology, relationship_key


@dataclass(frozen=True)
class LoginAs:
    credential: str
    user: str | None = None


class StepError(Exception):
    """A step could not even be prepared (an input or a host address could not be evaluated)."""


@dataclass(frozen=True)
class PreparedStep:
    step: Step
    operation: Operation | None  # None: nothing to run (no implementation) - a no-op that still moves state
    host: str  # the Compute node name, or "orchestrator"
    request: OperationRequest | None

    @property
    def is_monitor(self) -> bool:
        """Runnable.run is polled until the job ends, not run once."""
        return jobs.is_watch(self.step)


@dataclass(frozen=True)
class Evaluation:
    """What late evaluation needs: the topology, the effective inputs and readers of the store."""

    topology: Topology
    deployment: str
    inputs: Mapping[str, Any]
    read_attribute: Callable[[str, str], Any]
    read_operation_output: Callable[[str, str, str], Any]
    read_secret: Callable[[str, str | None], Any] | None = None
    deployment_dir: str = ""
    # an execution run with someone's own key (the service's scientists): every Compute is reached as
    # this orch credential, as its user when the credential names one, whatever the topology's endpoint says
    login: LoginAs | None = None

    def context(self, node: str | None, source: str | None = None, target: str | None = None,
                requirement: int | None = None) -> Context:
        return Context(self.topology, node, self.inputs, self.read_attribute, self.read_operation_output,
                       self.read_secret, source, target, requirement)

    @cached_property
    def plain_inputs(self) -> dict[str, Any]:
        """The effective inputs as plain values, once per command: they cannot change while it runs."""
        values = {}
        for name in self.inputs:
            try:
                values[name] = evaluate({"get_input": name}, self.context(None))
            except FunctionError:
                continue
        return values


def operation_of(topology: Topology, step: Step) -> Operation | None:
    node = topology.nodes[step.node]
    if step.operation is None:
        return None
    if step.requirement is not None:
        return node.requirements[step.requirement].operations.get(step.operation)
    return node.operations.get(step.operation)


def prepare(step: Step, ev: Evaluation,
            hosts: Callable[[], dict[str, dict[str, Any]]] | None = None) -> PreparedStep:
    """`hosts`: ORCH_HOSTS, when the caller computes it once for many steps (it reads the store)."""
    operation = operation_of(ev.topology, step)
    source = step.node
    target_node = ev.topology.nodes[step.node].requirements[step.requirement].target \
        if step.requirement is not None else None
    runs_on = target_node if step.side == "target" else source
    host_node = None if operation and (operation.operation_host or "").upper() == ORCHESTRATOR \
        else compute_host(ev.topology, runs_on)
    host_name = host_node or "orchestrator"
    if operation is None or not operation.implementation:
        return PreparedStep(step, operation, host_name, None)
    context = ev.context(step.node, source if target_node else None, target_node, step.requirement)
    try:
        inputs = evaluate(dict(operation.inputs), context)
        target = target_of(host_node, ev)
    except FunctionError as exc:
        raise StepError(f"{step.node} {step.operation}: {exc}") from exc
    variables: dict[str, Any] = dict(inputs)
    variables.update(context_variables(ev, step, host_name, target_node,
                                       hosts() if hosts else hosts_inventory(ev)))
    artifacts = ev.topology.nodes[step.node].artifacts
    variables.update({name: artifact.file for name, artifact in artifacts.items()})
    if jobs.reads_job_id(step):
        # the job these operations act on, as its submit reported it
        variables["TOSCA_JOB_ID"] = ev.read_operation_output(step.node, jobs.SUBMIT, "TOSCA_JOB_ID")
    playbook = operation.implementation
    kind = scripts.script_kind(playbook, artifacts.values())
    if kind is not None:  # a Bash or Python script: orch's own playbook runs it, its values as its environment
        values = {k: v for k, v in variables.items() if k not in ORCH_ADDITIONS and k not in artifacts}
        try:
            variables = scripts.script_variables(kind, playbook, operation.dependencies, values,
                                                 artifacts.values(), target.python, poll=jobs.is_watch(step))
        except scripts.ScriptError as exc:
            raise StepError(f"{step.node} {step.operation}: {exc}") from exc
        playbook = scripts.SCRIPT_PLAYBOOK
    request = OperationRequest(alias_for(step.id), playbook, target, variables,
                               label=f"{step.node} {step.operation}")
    return PreparedStep(step, operation, host_name, request)


# context variables for playbooks on the controller only: a script's environment leaves them out
ORCH_ADDITIONS = frozenset({"DEPLOYMENT_DIR", "ORCH_INPUTS", "ORCH_HOSTS"})


def context_variables(ev: Evaluation, step: Step, host: str, target_node: str | None,
                      hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    variables = {"NODE": step.node, "INSTANCE": f"{step.node}_0", "HOST": host, "DEPLOYMENT_ID": ev.deployment,
                 # orch's own additions: a folder on the controller for this deployment's files, the
                 # effective inputs (for ${name} substitution), and how to reach every host (for
                 # playbooks that move data between hosts through the controller with add_host)
                 "DEPLOYMENT_DIR": ev.deployment_dir, "ORCH_INPUTS": ev.plain_inputs, "ORCH_HOSTS": hosts}
    if target_node is not None:
        variables.update({"SOURCE_NODE": step.node, "SOURCE_INSTANCE": f"{step.node}_0",
                          "TARGET_NODE": target_node, "TARGET_INSTANCE": f"{target_node}_0"})
    return variables


def login_targets(ev: Evaluation) -> dict[str, Target]:
    """How each Compute whose address is known is reached (with ev.login, as that credential)."""
    targets: dict[str, Target] = {}
    for name, node in ev.topology.nodes.items():
        if node.is_a("tosca.nodes.Compute"):
            try:
                targets[name] = target_of(name, ev)
            except FunctionError:
                continue
    return targets


def hosts_inventory(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """Connection variables of every Compute whose address is known, by node name."""
    hosts: dict[str, dict[str, Any]] = {}
    for name, node in ev.topology.nodes.items():
        if not node.is_a("tosca.nodes.Compute"):
            continue
        try:
            hosts[name] = connection_vars(target_of(name, ev))
        except FunctionError:
            continue
    return hosts


def target_of(host_node: str | None, ev: Evaluation) -> Target:
    """SSH access from the Compute: address attribute, endpoint port and credential, known_hosts."""
    if host_node is None:
        return Target("orchestrator", LOCALHOST)
    compute = ev.topology.nodes[host_node]
    context = ev.context(host_node)
    address = None
    for attribute in ("public_address", "private_address"):
        address = evaluate({"get_attribute": ["SELF", attribute]}, context)
        if address:
            break
    if not address:
        raise FunctionError(f"host '{host_node}' has no public_address or private_address")
    endpoint = evaluate(dict(compute.capabilities.get("endpoint") or {}), context)
    credential = endpoint.get("credential") or {}
    if ev.login is not None:
        credential = {"user": ev.login.user or credential.get("user"), "token_type": "orch_credential",
                      "token": ev.login.credential}
    token_type = credential.get("token_type", "private_key")
    key_file = credential.get("token") if token_type == "private_key" else None
    # token_type orch_credential: the token names a credential of `orch credentials`
    key_credential = credential.get("token") if token_type == "orch_credential" else None
    python = evaluate(compute.properties.get("python_interpreter"), context) \
        if "python_interpreter" in compute.properties else None
    return Target(host_node, str(address), user=credential.get("user"), port=endpoint.get("port"),
                  key_file=key_file or None, known_hosts_file=endpoint.get("known_hosts_file") or None, python=python,
                  key_credential=key_credential)


def attributes_from_facts(node: NodeTemplate, facts: Mapping[str, Any]) -> dict[str, Any]:
    """Facts named like one of the node's attributes set that attribute (Yorc's convention)."""
    return {name: value for name, value in facts.items() if name in node.attributes}


def attribute_updates(topology: Topology, step: Step, facts: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What a step's success sets, by the store's key (a node's name, or a relationship's relationship_key):
    in a node's operation, the facts named like one of its attributes; then, for each of the operation's
    attribute mappings whose output the implementation set, the attribute it maps onto (an output it did not
    set leaves the attribute as it was)."""
    updates: dict[str, dict[str, Any]] = {}
    if step.requirement is None:
        updates[step.node] = attributes_from_facts(topology.nodes[step.node], facts)
    operation = operation_of(topology, step)
    for output, (entity, attribute) in (operation.outputs if operation else {}).items():
        if output in facts:
            updates.setdefault(mapped_key(topology, step, entity), {})[attribute] = facts[output]
    return updates


def mapped_key(topology: Topology, step: Step, entity: str) -> str:
    """The store's key of the entity an attribute mapping names (checked at load time)."""
    if entity == "SELF":
        return step.node if step.requirement is None else relationship_key(step.node, step.requirement)
    if entity == "SOURCE":
        return step.node
    if entity == "TARGET" and step.requirement is not None:
        return topology.nodes[step.node].requirements[step.requirement].target
    template = topology.relationship_templates.get(entity)
    if template is not None and entity not in topology.nodes and len(template.instances) == 1:
        return relationship_key(*template.instances[0])
    return entity


def outputs_from_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if not k.startswith("ansible_") and k != "discovered_interpreter_python"}
