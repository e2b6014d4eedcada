"""Build the model's node templates from the raw template and the type registry, finding what
tosca-parser misses: operations inherited from types, undeclared interfaces and operations, missing
playbooks and artifacts, and malformed function calls (requirements: tosca/requirements.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from orchestrator.model import Artifact, NodeTemplate, Operation, Problem, RelationshipTemplate
from orchestrator.tosca.functions import check_call, iter_functions
from orchestrator.tosca.implementations import ArtifactRef, parse_implementation
from orchestrator.tosca.matching import Matcher
from orchestrator.tosca.relationships import RelationshipBuilder
from orchestrator.tosca.requirements import RequirementBuilder
from orchestrator.tosca.types import (
    TypeRegistry,
    absolutize_artifact,
    absolutize_operation,
    interface_short_name,
    merge_operation,
    operations_of,
)

NORMATIVE_INTERFACES = {"Standard": "tosca.interfaces.node.lifecycle.Standard",
                        "Configure": "tosca.interfaces.relationship.Configure",
                        "Runnable": "tosca.interfaces.node.lifecycle.Runnable"}
OPERATION_HOSTS = ("SELF", "HOST", "SOURCE", "TARGET", "ORCHESTRATOR")
# Bash and Python implementations, run on the operation's host (the engine's orchestrator/executors/scripts.py
# holds the same names: tosca/ may not import executors/)
SCRIPT_TYPES = {"tosca.artifacts.Implementation.Bash": "Bash", "tosca.artifacts.Implementation.Python": "Python",
                "Bash": "Bash", "Python": "Python"}
SCRIPT_SUFFIXES_KIND = {".sh": "Bash", ".py": "Python"}
SUFFIX_OF_KIND = {"Bash": ".sh", "Python": ".py"}
SCRIPT_SUFFIXES = tuple(SCRIPT_SUFFIXES_KIND)
# TOSCA 1.3 operation definitions, plus orch's own retries/retry_delay and a Yorc-style operation_host
OPERATION_KEYWORDS = {"description", "implementation", "inputs", "outputs", "timeout", "retries", "retry_delay",
                      "operation_host"}
PARAMETER_KEYWORDS = {"type", "description", "value", "required", "default", "status", "constraints",
                      "key_schema", "entry_schema", "metadata", "external-schema"}


def is_parameter_definition(value: Any) -> bool:
    """A mapping of parameter-definition keywords with a `type` or a `value` (not a map value)."""
    return (isinstance(value, dict) and bool(value) and set(value) <= PARAMETER_KEYWORDS
            and ("type" in value or "value" in value))


class NodeBuilder(RequirementBuilder, RelationshipBuilder):
    """Turns raw node templates into `NodeTemplate`s, collecting problems instead of stopping."""

    def __init__(self, registry: TypeRegistry, file_name: str, base_dir: str,
                 relationship_templates: Mapping[str, Any], known_inputs: set[str], confine: str | None = None,
                 input_values: Mapping[str, Any] | None = None):
        """input_values: what get_input gives where a node_filter reads a property (those known)."""
        self.registry = registry
        self.known_input_values = input_values or {}
        self.confine = os.path.realpath(confine) if confine is not None else None  # a CSAR's folder
        self.file = file_name
        self.base_dir = base_dir
        self.relationship_templates = relationship_templates
        self.known_inputs = known_inputs
        self.problems: list[Problem] = []
        self.node_names: set[str] = set()
        self.built_relationship_templates: dict[str, RelationshipTemplate] = {}  # by build_all
        self.raw_nodes: Mapping[str, Any] = {}
        self.current_node: str | None = None  # SELF while a node template is built
        self.current_artifacts: Mapping[str, Artifact] = {}  # its artifacts, while its operations are built
        # per type or per file, not per node template: thousands of templates share a few of each
        self._capability_defaults: dict[str, dict[str, dict[str, Any]]] = {}
        self._allowed_operations: dict[tuple[str, str], set[str]] = {}
        self._path_kinds: dict[str, str | None] = {}

    def problem(self, place: str, message: str) -> None:
        self.problems.append(Problem(self.file, place, message))

    def build_all(self, raw_nodes: Mapping[str, Any]) -> dict[str, NodeTemplate]:
        self.node_names = set(raw_nodes)
        self.raw_nodes = raw_nodes
        self._uses = None  # relationship_uses of these node templates
        self.matcher = Matcher(self.registry, raw_nodes, self.known_input_values)
        self.built_relationship_templates = self.build_relationship_templates()
        nodes: dict[str, NodeTemplate] = {}
        for name, raw in raw_nodes.items():
            place = f"node_templates.{name}"
            if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                self.problem(place, "needs a 'type'")
                continue
            node = self.build_node(name, raw, place)
            if node is not None:
                nodes[name] = node
        self.check_requirement_cycles(nodes)
        return nodes

    def build_node(self, name: str, raw: Mapping[str, Any], place: str) -> NodeTemplate | None:
        type_name = self.registry.full_name(raw["type"])
        if not self.registry.knows(type_name):
            nfv = ".nfv." in raw["type"]  # tosca.nodes.nfv.Vdu.Compute and the like
            self.problem(f"{place}.type", f"unknown node type '{raw['type']}' " + (
                "(a type of the TOSCA NFV profile, which is outside orch's scope)" if nfv
                else "(is its type file imported?)"))
            return None
        self.current_node = name
        self.check_property_types(type_name, raw.get("properties"), f"{place}.properties")
        self.check_functions(raw.get("properties"), f"{place}.properties")
        self.check_functions(raw.get("attributes"), f"{place}.attributes")
        properties = self.defaults(type_name, "properties")
        properties.update(raw.get("properties") or {})
        # every declared attribute is listed (None when unset): a fact of that name sets it
        attributes = self.declared_attributes(type_name, raw.get("attributes") or {})
        capabilities = self.capability_defaults(type_name)
        for cap, value in (raw.get("capabilities") or {}).items():
            if isinstance(value, dict) or value is None:
                capabilities[cap] = {**capabilities.get(cap, {}), **dict((value or {}).get("properties") or {})}
        for cap, props in capabilities.items():
            self.check_functions(props, f"{place}.capabilities.{cap}.properties")
        artifacts = self.artifacts(type_name, raw.get("artifacts") or {}, place)
        requirements = self.requirements(name, type_name, raw.get("requirements") or [], place)
        self.current_artifacts = artifacts  # an operation's implementation may name one of them
        try:
            operations = self.operations(type_name, raw.get("interfaces") or {}, place, "Standard")
        finally:
            self.current_artifacts = {}
        return NodeTemplate(
            name=name,
            type=type_name,
            types=self.registry.lineage(type_name),
            properties=properties,
            attributes=attributes,
            capabilities=capabilities,
            requirements=requirements,
            operations=operations,
            artifacts=artifacts,
        )

    def capability_defaults(self, type_name: str) -> dict[str, dict[str, Any]]:
        """Each capability of the node type with its type's property defaults (fresh mappings)."""
        if type_name not in self._capability_defaults:
            self._capability_defaults[type_name] = self._type_capability_defaults(type_name)
        return {cap: dict(props) for cap, props in self._capability_defaults[type_name].items()}

    def _type_capability_defaults(self, type_name: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for cap, definition in self.registry.merged_section(type_name, "capabilities").items():
            cap_type = definition.get("type") if isinstance(definition, dict) else definition
            if isinstance(cap_type, str):
                result[cap] = self.defaults(self.registry.full_name(cap_type, "capability_types"), "properties")
                own = definition.get("properties") if isinstance(definition, dict) else None
                result[cap].update({k: v["default"] for k, v in (own if isinstance(own, dict) else {}).items()
                                    if isinstance(v, dict) and "default" in v})
        return result

    def defaults(self, type_name: str, section: str) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.registry.merged_section(type_name, section).items()
                if isinstance(v, dict) and "default" in v}

    def operations(self, type_name: str, assigned: Any, place: str, default_iface: str) -> dict[str, Operation]:
        """Operations declared along the type chain, refined by the template's own assignments."""
        merged = self.registry.interface_operations(type_name)
        if not isinstance(assigned, dict):
            self.problem(f"{place}.interfaces", "must be a mapping of interfaces")
            assigned = {}
        for iface_name, iface in assigned.items():
            short = interface_short_name(iface_name, (iface or {}).get("type") if isinstance(iface, dict) else None)
            where = f"{place}.interfaces.{iface_name}"
            if short not in merged and short not in NORMATIVE_INTERFACES:
                self.problem(where, f"interface '{iface_name}' is not declared by type '{type_name}'")
                continue
            if not isinstance(iface, dict):
                self.problem(where, "must be a mapping of operations")
                continue
            allowed = self.allowed_operations(short, type_name)
            ops = merged.setdefault(short, {})
            shared = iface.get("inputs")
            if shared is not None and not isinstance(shared, dict):
                self.problem(f"{where}.inputs", "must be a mapping")
            elif shared:
                # interface-level inputs reach every operation of the interface; an operation's own win
                for op_name in ops:
                    ops[op_name] = merge_operation(ops[op_name], {"inputs": shared})
                for op_name in operations_of(iface):
                    ops.setdefault(op_name, {"inputs": dict(shared)})
            for op_name, op in operations_of(iface).items():
                if allowed and op_name not in allowed and op_name not in ops:
                    self.problem(f"{where}.{op_name}", f"interface '{short}' has no operation '{op_name}'")
                    continue
                op = absolutize_operation(op, self.base_dir, self.confine)
                if self.confine is not None:
                    self.check_confined(op, f"{where}.{op_name}")
                ops[op_name] = merge_operation(ops.get(op_name, {}), op)
        result: dict[str, Operation] = {}
        for short, ops in merged.items():
            for op_name, op in ops.items():
                operation = self.operation(short, op_name, op, f"{place}.interfaces.{short}.{op_name}",
                                           default_iface == "Configure")
                if operation is not None:
                    result[operation.key] = operation
        return result

    def allowed_operations(self, short: str, type_name: str) -> set[str]:
        key = (short, type_name)
        if key not in self._allowed_operations:
            self._allowed_operations[key] = self._type_allowed_operations(short, type_name)
        return self._allowed_operations[key]

    def _type_allowed_operations(self, short: str, type_name: str) -> set[str]:
        interface_type = NORMATIVE_INTERFACES.get(short)
        if interface_type is None:
            for definition in (self.registry.definitions[t] for t in self.registry.lineage(type_name)):
                iface = (definition.get("interfaces") or {}).get(short)
                if isinstance(iface, dict) and isinstance(iface.get("type"), str):
                    interface_type = iface["type"]
                    break
        return self.registry.interface_type_operations(interface_type) if interface_type else set()

    def operation(self, short: str, name: str, raw: Mapping[str, Any], where: str,
                  in_relationship: bool = False) -> Operation | None:
        unknown = sorted(set(raw) - OPERATION_KEYWORDS)
        if unknown:  # a misspelt `implementation` would otherwise make a silent no-op
            self.problem(where, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown))} in an "
                                f"operation (known: {', '.join(sorted(OPERATION_KEYWORDS))})")
            return None
        implementation = parse_implementation(raw.get("implementation"), self.current_artifacts, where, self.problem)
        if implementation is None:
            return None
        impl = self.runnable_file(implementation.primary, where)
        dependencies = tuple(self.shipped_file(d, where) for d in implementation.dependencies)
        operation_host, timeout = implementation.operation_host, implementation.timeout
        operation_host = operation_host or raw.get("operation_host")
        if operation_host is not None and operation_host not in OPERATION_HOSTS:
            self.problem(where, f"operation_host '{operation_host}' is not one of {', '.join(OPERATION_HOSTS)}")
        timeout = timeout if timeout is not None else raw.get("timeout")
        if timeout is not None and not (_number(timeout) is not None and timeout > 0):
            self.problem(f"{where}.timeout", f"timeout must be a number of seconds (more than 0), not {timeout!r}")
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, dict):
            self.problem(f"{where}.inputs", "must be a mapping")
            inputs = {}
        inputs = self.input_values(inputs, f"{where}.inputs")
        self.check_functions(inputs, f"{where}.inputs", in_relationship)
        retries, retry_delay = raw.get("retries"), raw.get("retry_delay")
        if retries is not None and not (_int(retries) is not None and retries >= 0):
            self.problem(f"{where}.retries", "must be a whole number of attempts after the first (0 or more)")
        if retry_delay is not None and not (_number(retry_delay) is not None and retry_delay >= 0):
            self.problem(f"{where}.retry_delay", "must be a number of seconds (0 or more)")
        outputs = self.attribute_mappings(raw.get("outputs"), where, in_relationship)
        return Operation(short, name, impl or None, inputs, dependencies, operation_host,
                         _number(timeout), _int(retries), _number(retry_delay), outputs)

    def runnable_file(self, primary: ArtifactRef | None, where: str) -> str | None:
        """The playbook an operation runs (None: a no-op), after saying why orch could not run it."""
        if primary is None:
            return None
        file = self.shown(primary.file)
        shown = f"artifact '{primary.artifact}' ('{file}')" if primary.artifact else f"'{file}'"
        if primary.repository:
            self.problem(where, f"implementation {shown} is a file of repository '{primary.repository}'; orch "
                                "runs implementations it has on disk (put the file beside the template)")
        elif primary.file.endswith((".yml", ".yaml")) and not self.is_file(primary.file):
            self.problem(where, f"playbook {shown} does not exist")
        elif primary.file.endswith(SCRIPT_SUFFIXES) or SCRIPT_TYPES.get(str(primary.type)):
            self.script_problems(primary, shown, where)
        elif not primary.file.endswith((".yml", ".yaml")):
            missing = "" if self.is_file(primary.file) else " and does not exist"
            self.problem(where, f"implementation {shown} is not an Ansible playbook (.yml/.yaml){missing}; "
                                "orch runs playbooks, Bash (.sh) and Python (.py) scripts")
        return primary.file

    def script_problems(self, primary: ArtifactRef, shown: str, where: str) -> None:
        """A Bash or Python implementation (run by playbooks/scripts/run_script.yaml). The engine tells a script
        by its suffix or by the type of the node's artifact it names: an inline artifact definition typed Bash
        or Python must then carry the suffix, or it would be taken for a playbook."""
        kind = SCRIPT_TYPES.get(str(primary.type))
        suffix = next((k for s, k in SCRIPT_SUFFIXES_KIND.items() if primary.file.endswith(s)), None)
        if not self.is_file(primary.file):
            self.problem(where, f"script {shown} does not exist")
        elif kind and suffix and kind != suffix:
            self.problem(where, f"implementation {shown} is of type {primary.type} but named like a {suffix} script")
        elif kind and not suffix and not primary.artifact:
            self.problem(where, f"implementation {shown} is a {kind} script whose name does not end in "
                                f"{SUFFIX_OF_KIND[kind]}: name it so, or declare it as an artifact of the node and "
                                "name that artifact")

    def shipped_file(self, dependency: ArtifactRef, where: str) -> str:
        """A file an operation needs beside its playbook: one orch has (or a URL the playbook fetches)."""
        if dependency.repository:
            self.problem(where, f"dependency '{dependency.written}' is a file of repository "
                                f"'{dependency.repository}'; orch ships files it has on disk")
        elif "://" not in dependency.file and not self.exists(dependency.file):
            self.problem(where, f"dependency '{dependency.written}' does not exist (looked for "
                                f"{self.shown(dependency.file)})")
        return dependency.file

    def input_values(self, inputs: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Operation inputs as values. A parameter definition (TOSCA 1.3 §3.6.14: `type`, `value`,
        `default`, `required`, ...) gives its `value`, else its `default`; one marked `required: true`
        with neither is a problem. Without `required`, a definition with no value declares a parameter
        that a derived type or a template may assign (as type libraries commonly do) and, unassigned,
        is left out."""
        values: dict[str, Any] = {}
        for name, value in inputs.items():
            if not is_parameter_definition(value):
                values[name] = value
            elif "value" in value:
                values[name] = value["value"]
            elif "default" in value:
                values[name] = value["default"]
            elif value.get("required") is True:
                self.problem(f"{where}.{name}", "a required input with no value (give it a 'value' or a "
                                                "'default')")
        return values

    def artifacts(self, type_name: str, raw: Any, place: str) -> dict[str, Artifact]:
        merged = self.registry.merged_section(type_name, "artifacts")
        if isinstance(raw, dict):
            merged.update({k: absolutize_artifact(v, self.base_dir, self.confine) for k, v in raw.items()})
            for k in raw if self.confine is not None else ():
                file = merged[k].get("file") if isinstance(merged[k], dict) else merged[k]
                local = not (isinstance(merged[k], dict) and merged[k].get("repository"))
                if isinstance(file, str) and local and "://" not in file and not _inside(file, self.confine):
                    self.problem(f"{place}.artifacts.{k}",
                                 f"'{file}' leaves the archive; a CSAR's template may name only its own files")
        result: dict[str, Artifact] = {}
        for name, value in merged.items():
            value = value if isinstance(value, dict) else {"file": value}
            if not isinstance(value.get("file"), str):
                self.problem(f"{place}.artifacts.{name}", "needs a 'file'")
                continue
            artifact_type = value.get("type", "tosca.artifacts.File")
            if not isinstance(artifact_type, str) or not self.registry.knows(artifact_type):
                self.problem(f"{place}.artifacts.{name}.type", f"unknown artifact type '{artifact_type}'")
            repository = value.get("repository")
            # a repository's file is a path in the repository (TOSCA 1.3), never looked for here
            if not repository and "://" not in value["file"] and not self.exists(value["file"]):
                self.problem(f"{place}.artifacts.{name}", f"artifact file '{self.shown(value['file'])}' does not "
                                                          "exist")
            result[name] = Artifact(name, str(artifact_type), str(value["file"]), value.get("deploy_path"),
                                    str(repository) if repository else None)
        return result

    def check_confined(self, op: Mapping[str, Any], where: str) -> None:
        """A CSAR's template names only files the archive carries (a repository's are elsewhere)."""
        impl = op.get("implementation")
        artifacts: list[Any] = [impl] if isinstance(impl, str) else []
        if isinstance(impl, dict):
            artifacts.append(impl if "file" in impl and "primary" not in impl else impl.get("primary"))
            dependencies = impl.get("dependencies")
            artifacts += dependencies if isinstance(dependencies, list) else []
        for artifact in artifacts:
            if isinstance(artifact, dict) and artifact.get("repository"):
                continue
            path = artifact.get("file") if isinstance(artifact, dict) else artifact
            if isinstance(path, str) and "://" not in path and not _inside(path, self.confine):
                self.problem(where, f"'{path}' leaves the archive; a CSAR's template may name only its own files")

    def shown(self, path: str) -> str:
        """A path as the user knows it: inside a CSAR, its path in the archive (not the folder orch unpacked
        the archive into)."""
        if self.confine is not None and "://" not in path and _inside(path, self.confine):
            return os.path.relpath(path, self.confine)
        return path

    def is_file(self, path: str) -> bool:
        return self._path_kind(path) == "file"

    def exists(self, path: str) -> bool:
        return self._path_kind(path) is not None

    def _path_kind(self, path: str) -> str | None:
        """Asked of the file system once per path and load: every template of a type names its playbooks."""
        if path not in self._path_kinds:
            self._path_kinds[path] = ("file" if os.path.isfile(path) else "other") if os.path.exists(path) else None
        return self._path_kinds[path]

    def check_functions(self, value: Any, place: str, in_relationship: bool = False) -> None:
        """in_relationship: the value is in a relationship's operation (SELF is the relationship, and SOURCE
        and TARGET mean something); else SELF is the node being built."""
        for path, name, args in iter_functions(value):
            message = (check_call(name, args, self.known_inputs, self.node_names, in_relationship=in_relationship,
                                  relationship_names=self.relationship_templates)
                       or self.check_reference(name, args, in_relationship))
            if message:
                self.problem(f"{place}.{path}" if path else place, message)

    def check_property_types(self, type_name: str, values: Any, place: str) -> None:
        """Literal property values of the plainly wrong kind for their declared type (tosca-parser reports
        these too, but naming neither the template nor the property). Values are never shown."""
        if not isinstance(values, dict):
            return
        definitions = self.registry.merged_section(type_name, "properties")
        for prop, value in values.items():
            definition = definitions.get(prop)
            problem = value_kind_problem(value, definition.get("type")) if isinstance(definition, dict) else None
            if problem:
                self.problem(f"{place}.{prop}", problem)

    def check_reference(self, name: str, args: Any, in_relationship: bool) -> str | None:
        """A get_property or get_artifact of a node known at load time (SELF or a node's name) names
        something that node has; a get_property or get_attribute of a relationship, something it has."""
        if not isinstance(args, list) or len(args) < 2:
            return None
        if name in ("get_property", "get_attribute") and self.relationship_named_by(args[0], in_relationship):
            return self.relationship_reference(name, args, in_relationship)
        if name not in ("get_property", "get_artifact"):
            return None
        node = self.current_node if args[0] == "SELF" and not in_relationship else args[0]
        raw = self.raw_nodes.get(node) if isinstance(node, str) else None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return None
        type_name = self.registry.full_name(raw["type"])
        if not self.registry.knows(type_name):
            return None
        if name == "get_artifact":
            known = set(self.registry.merged_section(type_name, "artifacts"))
            known |= set(raw["artifacts"]) if isinstance(raw.get("artifacts"), dict) else set()
            what = "artifact"
        else:
            known = set(self.registry.merged_section(type_name, "properties"))
            known |= set(raw["properties"]) if isinstance(raw.get("properties"), dict) else set()
            known |= set(self.registry.merged_section(type_name, "capabilities"))
            known |= set(self.registry.requirement_definitions(type_name))
            what = "property"
        if args[1] in known:
            return None
        listed = ", ".join(sorted(map(str, known))) if what == "artifact" else ""
        return f"{name}: node '{node}' has no {what} '{args[1]}'" + (f" (it has: {listed})" if listed else "")

def value_kind_problem(value: Any, type_name: Any) -> str | None:
    """Why a literal value cannot be of a TOSCA primitive type (integer, float, boolean, list, map), or None:
    what tosca-parser refuses too, but here with the property's place and never the value itself.
    Functions and other types are left alone."""
    if value is None or (isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value)), str)
                         and next(iter(value)).startswith(("get_", "concat", "join", "token"))):
        return None
    if type_name == "integer":
        try:
            int(value)
        except (TypeError, ValueError, OverflowError):
            return "is not an integer"
        return None
    if type_name == "float":
        return None if isinstance(value, (int, float)) else "is not a float"
    if type_name == "boolean":
        ok = isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
        return None if ok else "is not a boolean"
    if type_name == "list" and not isinstance(value, list):
        return "is not a list"
    if type_name == "map" and not isinstance(value, dict):
        return "is not a map"
    return None


def _inside(path: str, folder: str) -> bool:
    """Whether an (absolute, normalized) path is the folder or below it."""
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
