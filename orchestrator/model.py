"""The grammar-free model that flows through the pipeline: load → plan → execute → store.

Everything here is a frozen dataclass of plain data. Values that may hold TOSCA functions
(`{get_input: x}`) are kept as they were written; they are evaluated late, when a step runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

LOCALHOST = "localhost"
ORCHESTRATOR = "ORCHESTRATOR"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can."""

    file: str
    place: str  # e.g. "node_templates.web.requirements[0]" or "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.place}" if self.place else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Validation:
    """What `orch validate` found in a template that has no problem. `needs_inputs`: required inputs
    without a value, which deploy and plan will need. `kind`: "topology", or "types" for a type library
    (a file with definitions and no topology_template)."""

    path: str
    kind: str
    nodes: int
    workflows: int
    needs_inputs: tuple[str, ...] = ()


class LoadError(Exception):
    """Raised by `load` when the input has problems; carries all of them."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class UsageError(Exception):
    """The user asked for something that cannot be done as asked (exit code 2)."""


@dataclass(frozen=True)
class Operation:
    interface: str  # short name: Standard, Configure, Runnable, or a custom one
    name: str  # create, configure, submit, ...
    implementation: str | None  # absolute path of the playbook, None = no-op
    inputs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    operation_host: str | None = None  # SELF / HOST / SOURCE / TARGET / ORCHESTRATOR
    timeout: float | None = None
    retries: int | None = None
    retry_delay: float | None = None
    # TOSCA attribute mappings: output name -> (entity, attribute). The entity is SELF, SOURCE, TARGET, a node
    # template or a relationship template; once the operation succeeds, the attribute takes the value of the
    # fact the implementation set under the output's name
    outputs: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.interface}.{self.name}"


@dataclass(frozen=True)
class Artifact:
    name: str
    type: str
    file: str  # absolute path on the controller (or a URL as written, or a path in `repository`)
    deploy_path: str | None = None
    repository: str | None = None  # the repository (topology's `repositories`) the file is in, if any


@dataclass(frozen=True)
class Requirement:
    name: str
    target: str  # node template name
    relationship_type: str
    relationship_types: tuple[str, ...]  # the type and its ancestors
    operations: Mapping[str, Operation] = field(default_factory=dict)  # "Configure.pre_configure_source"
    properties: Mapping[str, Any] = field(default_factory=dict)
    # whether the relationship orders its ends (HostedOn, DependsOn, ConnectsTo and types derived from them);
    # one derived from Root alone joins two nodes without saying which comes first
    orders: bool = True
    template: str | None = None  # the relationship template (topology's relationship_templates) it uses, if any
    attributes: Mapping[str, Any] = field(default_factory=dict)  # the relationship's declared attributes

    def is_a(self, type_name: str) -> bool:
        return type_name in self.relationship_types


def relationship_key(source: str, requirement: int) -> str:
    """Where a relationship's attributes are kept: the store keys attributes by (deployment, node, name), and a
    relationship is the `requirement`-th requirement of its source node, so its key is written as the problem
    places write it, `app.requirements[1]`, which no node template of the topology is named in practice."""
    return f"{source}.requirements[{requirement}]"


@dataclass(frozen=True)
class RelationshipTemplate:
    """A template of the topology's relationship_templates, named by requirements (`relationship: name`) and by
    get_property/get_attribute."""

    name: str
    type: str
    types: tuple[str, ...]  # the type and its ancestors
    properties: Mapping[str, Any] = field(default_factory=dict)  # the type's defaults, then the template's values
    attributes: Mapping[str, Any] = field(default_factory=dict)  # declared defaults / assignments
    # the requirements whose relationship it is, as (source node, index into its requirements)
    instances: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class NodeTemplate:
    name: str
    type: str
    types: tuple[str, ...]  # the type and its ancestors, nearest first
    properties: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)  # declared defaults / assignments
    capabilities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> properties
    requirements: tuple[Requirement, ...] = ()
    operations: Mapping[str, Operation] = field(default_factory=dict)  # "Standard.create" -> Operation
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)

    def is_a(self, type_name: str) -> bool:
        return type_name in self.types


@dataclass(frozen=True)
class InputDefinition:
    name: str
    type: str = "string"
    required: bool = True
    default: Any = None
    has_default: bool = False
    constraints: tuple[Mapping[str, Any], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Activity:
    kind: str  # set_state | call_operation | delegate | inline
    value: str  # the state, "Interface.operation", the delegated workflow, the inlined workflow


@dataclass(frozen=True)
class WorkflowStep:
    name: str
    target: str  # node template, or relationship "node.requirement"
    activities: tuple[Activity, ...]
    on_success: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    target_relationship: str | None = None  # requirement name when the target is a relationship


@dataclass(frozen=True)
class Workflow:
    name: str
    inputs: Mapping[str, InputDefinition] = field(default_factory=dict)
    steps: Mapping[str, WorkflowStep] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Topology:
    path: str  # the file the user gave (template or CSAR)
    template_file: str  # the service template actually read
    base_dir: str  # where relative implementation/artifact paths resolve
    description: str
    inputs: Mapping[str, InputDefinition]
    input_values: Mapping[str, Any]  # after defaults, user values and validation
    nodes: Mapping[str, NodeTemplate]
    outputs: Mapping[str, Any]  # name -> raw value expression
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    policies: Mapping[str, Any] = field(default_factory=dict)  # raw, e.g. orch retry settings
    relationship_templates: Mapping[str, RelationshipTemplate] = field(default_factory=dict)


class StepKind(str, Enum):
    OPERATION = "operation"
    SET_STATE = "set_state"


@dataclass(frozen=True)
class Step:
    """One node of the lifecycle graph: an operation (or a state change) on a node or relationship."""

    id: str
    node: str
    kind: StepKind = StepKind.OPERATION
    operation: str | None = None  # "Standard.create"; None for set_state
    state: str | None = None  # for set_state steps, or the state reached when the operation succeeds
    running_state: str | None = None  # state while the operation runs (e.g. "creating")
    requirement: int | None = None  # index into the source node's requirements, for relationship operations
    side: str | None = None  # "source" or "target": whose host a relationship operation runs on
    workflow_step: str | None = None  # the imperative workflow step that produced it

    @property
    def is_relationship(self) -> bool:
        return self.requirement is not None


def type_short_name(interface: str) -> str:
    """tosca.interfaces.node.lifecycle.Standard -> Standard."""
    return interface.rsplit(".", 1)[-1]


def resolve_path(base_dir: str, path: str) -> str:
    return str((Path(base_dir) / path).resolve()) if not Path(path).is_absolute() else path


@dataclass(frozen=True)
class PlanView:
    """A plan as plain data, for rendering: its steps in waves (the steps of a wave may run together,
    in id order), its ordering edges, and the steps that run something (None: not known)."""

    waves: tuple[tuple[Step, ...], ...]
    edges: tuple[tuple[str, str], ...]
    implemented: frozenset[str] | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for wave in self.waves for step in wave)

    def predecessors(self, step_id: str) -> list[str]:
        return sorted(a for a, b in self.edges if b == step_id)
