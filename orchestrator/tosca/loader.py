"""The load driver: read → imports → types → inputs → nodes → workflows → tosca-parser validation.

Each phase collects problems; a phase whose input is broken stops the phases that depend on it,
so the user sees every independent problem at once and no cascade of consequences.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from orchestrator.model import LoadError, Problem, Topology, Validation
from orchestrator.tosca import csar
from orchestrator.tosca.build import NodeBuilder, value_kind_problem
from orchestrator.tosca.functions import check_call, iter_functions
from orchestrator.gcpause import paused_gc
from orchestrator.tosca.imports import SUPPORTED_VERSIONS, collect_imports
from orchestrator.tosca.inputs import parse_input_definitions, resolve_input_values
from orchestrator.tosca.parser import check_with_tosca_parser
from orchestrator.tosca.types import INTERFACE_KEYWORDS, TYPE_SECTIONS, TypeRegistry, type_definition_problems
from orchestrator.tosca.workflows import parse_workflows
from orchestrator.tosca.yamlio import read_yaml

TOPOLOGY_KEYS = {"description", "inputs", "node_templates", "relationship_templates", "outputs", "groups",
                 "policies", "substitution_mappings", "workflows"}
ORCH_OPERATION_KEYS = ("retries", "retry_delay")


def load(path: str | Path, inputs: Mapping[str, Any] | None = None, *, allow_remote_imports: bool = False,
         unpack_dir: str | Path | None = None) -> Topology:
    """Load a service template (YAML or CSAR). Raises LoadError with every problem found.

    A CSAR is unpacked into `unpack_dir` when given (the deployment keeps its playbooks there), else
    into a temporary folder that is removed before this returns.
    """
    name = str(path)
    try:
        with paused_gc():
            return _load(path, name, inputs, allow_remote_imports, unpack_dir)
    except LoadError:
        raise
    except RecursionError:
        raise LoadError([Problem(name, "", "nested too deeply to be a topology")]) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, StopIteration) as exc:
        # A value of the wrong shape (a list where a mapping belongs, ...) that no check named more
        # precisely: still the user's input, so a problem and exit 2, never a traceback.
        raise LoadError([Problem(name, "", f"malformed template structure ({type(exc).__name__}: {exc})")]) from None


def _load(path: str | Path, name: str, inputs: Mapping[str, Any] | None, allow_remote_imports: bool,
          unpack_dir: str | Path | None) -> Topology:
    if csar.is_csar(name):
        if unpack_dir is not None:
            # validated in a fresh folder first: a refused archive must leave the deployed files as they were
            directory = Path(unpack_dir)
            fresh, entry, problems = csar.unpack_beside(Path(path), directory)
            if problems or fresh is None or entry is None:
                raise LoadError(problems)
            try:
                _load_template(entry, name, inputs or {}, allow_remote_imports, fresh)
            except BaseException:
                csar.discard(fresh, directory)
                raise
            csar.swap_in(fresh, directory)
            # read again where it stays: the model's paths (playbooks, artifacts) point into the folder
            return _load_template(directory / entry.relative_to(fresh), name, inputs or {}, allow_remote_imports,
                                  directory)
        with csar.unpacked(path) as (root, entry, problems):
            if problems or entry is None:
                raise LoadError(problems)
            return _load_template(entry, name, inputs or {}, allow_remote_imports, root)
    return _load_template(Path(path), name, inputs or {}, allow_remote_imports)


def check(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
          allow_remote_imports: bool = False) -> Validation:
    """`orch validate`: the template checked as deploy would check it. Raises LoadError with every problem."""
    topology = load(path, inputs, allow_remote_imports=allow_remote_imports)
    return Validation(str(path), "topology", len(topology.nodes), len(topology.workflows))


def validate(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
             allow_remote_imports: bool = False) -> list[Problem]:
    try:
        load(path, inputs, allow_remote_imports=allow_remote_imports)
    except LoadError as exc:
        return exc.problems
    return []


def _load_template(template: Path, given_path: str, given_inputs: Mapping[str, Any],
                   allow_remote: bool, archive_root: Path | None = None) -> Topology:
    """archive_root: the folder a CSAR was unpacked into, which its template's files must not leave."""
    file_name = str(template) if given_path == str(template) else f"{given_path}!{template.name}"
    document, problems = read_yaml(template, "template")
    if problems:
        raise LoadError(problems)
    problems = _check_shape(document, file_name)
    if problems:
        raise LoadError(problems)
    template_file = str(template.resolve())
    base_dir = os.path.dirname(template_file)
    topology_raw = dict(document.get("topology_template") or {})
    workflows_raw = topology_raw.pop("workflows", None)

    confine = os.path.realpath(archive_root) if archive_root is not None else None
    def shown(location: str) -> str:
        """A file as the user knows it: inside a CSAR, by the archive's name and its path in it."""
        if location == template_file:
            return file_name
        if confine is not None and not location.startswith(("http://", "https://")) \
                and os.path.commonpath([location, confine]) == confine:
            return f"{given_path}!{os.path.relpath(location, confine)}"
        return location

    imported, problems = collect_imports(document, template_file, allow_remote, confine)
    if problems:
        raise LoadError([Problem(shown(p.file), p.place, p.message) for p in problems])
    registry = TypeRegistry.build([(f.document, os.path.dirname(f.location)) for f in imported]
                                  + [(document, base_dir)])
    loops = registry.derivation_loops()
    if loops:  # tosca-parser would walk such a loop forever
        raise LoadError([Problem(file_name, f"types.{name}", "derived_from loop: " + " -> ".join(loop))
                         for name, loop in loops.items()])

    problems = [Problem(shown(owner), place, message)
                for owner, doc in [(f.location, f.document) for f in imported] + [(template_file, document)]
                for place, message in type_definition_problems(doc, registry)]
    def known_data_type(name: str) -> bool:
        return registry.knows(registry.full_name(name, "data_types"))

    definitions, input_problems = parse_input_definitions(topology_raw.get("inputs"), file_name,
                                                          "topology_template.inputs", known_data_type)
    problems += input_problems
    input_values, value_problems = resolve_input_values(definitions, given_inputs, file_name,
                                                        "topology_template.inputs")
    problems += value_problems

    workflow_input_names = _workflow_input_names(workflows_raw)
    builder = NodeBuilder(registry, file_name, base_dir, topology_raw.get("relationship_templates") or {},
                          set(definitions) | workflow_input_names, confine)
    raw_nodes = topology_raw.get("node_templates")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        problems.append(Problem(file_name, "topology_template.node_templates", "needs at least one node template"))
        raw_nodes = {}
    nodes = builder.build_all(raw_nodes)
    problems += builder.problems

    workflows, workflow_problems = parse_workflows(workflows_raw, nodes, file_name, known_data_type)
    problems += workflow_problems
    outputs = _outputs(topology_raw.get("outputs"), file_name, set(definitions) | workflow_input_names, set(nodes),
                       problems)
    groups = topology_raw.get("groups")
    problems += _group_problems(groups, set(raw_nodes), file_name)
    problems += _policy_problems(topology_raw.get("policies"), registry, set(raw_nodes),
                                 set(groups) if isinstance(groups, dict) else set(), file_name)
    if problems:
        raise LoadError(problems)

    checked = _self_contained(document, topology_raw, imported, _workflow_input_specs(workflows_raw))
    parser_inputs = {k: v for k, v in input_values.items() if not isinstance(v, dict)}
    problems = check_with_tosca_parser(checked, parser_inputs, file_name)
    if problems:
        raise LoadError(problems)
    return Topology(path=given_path, template_file=template_file, base_dir=base_dir,
                    description=str(document.get("description", "") or ""), inputs=definitions,
                    input_values=input_values, nodes=nodes, outputs=outputs, workflows=workflows,
                    policies=_policies(topology_raw.get("policies")))


def _check_shape(document: Any, file_name: str) -> list[Problem]:
    if not isinstance(document, dict):
        return [Problem(file_name, "", "a service template must be a YAML mapping")]
    version = document.get("tosca_definitions_version")
    if version is None:
        return [Problem(file_name, "tosca_definitions_version", "is missing; use tosca_simple_yaml_1_3")]
    if version not in SUPPORTED_VERSIONS:
        return [Problem(file_name, "tosca_definitions_version",
                        f"'{version}' is not supported; use one of {', '.join(SUPPORTED_VERSIONS)}")]
    topology = document.get("topology_template")
    if not isinstance(topology, dict):
        return [Problem(file_name, "topology_template", "is missing or not a mapping")]
    unknown = sorted(set(topology) - TOPOLOGY_KEYS)
    return [Problem(file_name, f"topology_template.{key}", "unknown section") for key in unknown]


def _workflow_input_specs(raw: Any) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    if isinstance(raw, dict):
        for body in raw.values():
            if isinstance(body, dict) and isinstance(body.get("inputs"), dict):
                specs.update(body["inputs"])
    return specs


def _workflow_input_names(raw: Any) -> set[str]:
    return set(_workflow_input_specs(raw))


def _outputs(raw: Any, file_name: str, inputs: set[str], nodes: set[str], problems: list[Problem]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(file_name, "topology_template.outputs", "must be a mapping"))
        return {}
    outputs: dict[str, Any] = {}
    for name, body in raw.items():
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(body, dict) or "value" not in body:
            problems.append(Problem(file_name, f"topology_template.outputs.{name}", "needs a 'value'"))
            continue
        for path, fn, args in iter_functions(value):
            message = check_call(fn, args, inputs, nodes, in_relationship=False)
            if message:
                problems.append(Problem(file_name, f"topology_template.outputs.{name}.value", message))
        outputs[name] = value
    return outputs


def _group_problems(raw: Any, nodes: set[str], file_name: str) -> list[Problem]:
    problems: list[Problem] = []
    for name, group in raw.items() if isinstance(raw, dict) else ():
        members = group.get("members") if isinstance(group, dict) else None
        if members is None:
            continue
        if not isinstance(members, list):
            problems.append(Problem(file_name, f"topology_template.groups.{name}.members", "must be a list of nodes"))
            continue
        problems += [Problem(file_name, f"topology_template.groups.{name}.members", f"unknown node '{member}'")
                     for member in members if not isinstance(member, str) or member not in nodes]
    return problems


def _policy_problems(raw: Any, registry: TypeRegistry, nodes: set[str], groups: set[str],
                     file_name: str) -> list[Problem]:
    """Types, targets and properties of policies (a list of one-key mappings in TOSCA 1.3). Property
    values are never shown: only their kind is wrong."""
    if raw is None:
        return []
    entries = list(raw.items()) if isinstance(raw, dict) else None
    if isinstance(raw, list):
        entries = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or len(entry) != 1:
                return [Problem(file_name, f"topology_template.policies[{i}]", "must be a one-key mapping 'name: policy'")]
            entries.append(next(iter(entry.items())))
    if entries is None:
        return [Problem(file_name, "topology_template.policies", "must be a list of policies")]
    problems: list[Problem] = []
    for i, (name, policy) in enumerate(entries):
        where = f"topology_template.policies[{i}].{name}" if isinstance(raw, list) else f"topology_template.policies.{name}"
        if not isinstance(policy, dict) or not isinstance(policy.get("type"), str):
            problems.append(Problem(file_name, where, "needs a 'type'"))
            continue
        type_name = registry.full_name(policy["type"], "policy_types")
        if not registry.knows(type_name) and registry.knows("tosca.policies." + policy["type"]):
            type_name = "tosca.policies." + policy["type"]
        if not registry.knows(type_name):
            problems.append(Problem(file_name, f"{where}.type", f"unknown policy type '{policy['type']}'"))
            continue
        targets = policy.get("targets")
        if targets is not None and not isinstance(targets, list):
            problems.append(Problem(file_name, f"{where}.targets", "must be a list of nodes or groups"))
        for target in targets if isinstance(targets, list) else ():
            if not isinstance(target, str) or (target not in nodes and target not in groups):
                problems.append(Problem(file_name, f"{where}.targets", f"targets unknown node '{target}'"))
        properties = policy.get("properties")
        if properties is None:
            continue
        if not isinstance(properties, dict):
            problems.append(Problem(file_name, f"{where}.properties", "must be a mapping"))
            continue
        declared = registry.merged_section(type_name, "properties")
        for prop, value in properties.items():
            definition = declared.get(prop)
            if definition is None:
                problems.append(Problem(file_name, f"{where}.properties",
                                        f"contains unknown field \"{prop}\" (policy type '{type_name}')"))
            elif isinstance(definition, dict):
                kind = value_kind_problem(value, definition.get("type"))
                if kind:
                    problems.append(Problem(file_name, f"{where}.properties.{prop}", kind))
    return problems


def _policies(raw: Any) -> dict[str, Any]:
    if isinstance(raw, list):
        merged: dict[str, Any] = {}
        for entry in raw:
            if isinstance(entry, dict):
                merged.update(entry)
        return merged
    return raw if isinstance(raw, dict) else {}


def _full_interface_type(interface: Any, interface_types: set[str]) -> Any:
    if isinstance(interface, dict) and isinstance(interface.get("type"), str) and "." not in interface["type"]:
        full = [t for t in interface_types if t.rsplit(".", 1)[-1] == interface["type"]]
        if len(full) == 1:
            return {**interface, "type": full[0]}
    return interface


def _self_contained(document: Mapping[str, Any], topology_raw: Mapping[str, Any], imported: list,
                    workflow_inputs_raw: Mapping[str, Any]) -> dict[str, Any]:
    """The template as tosca-parser should see it: no workflows, imports merged in, nothing to fetch.
    A deep copy, because tosca-parser replaces function dicts with objects in place."""
    checked: dict[str, Any] = {k: v for k, v in document.items() if k not in ("imports", "topology_template")}
    for section in TYPE_SECTIONS:
        merged: dict[str, Any] = {}
        for f in imported:
            merged.update(f.document.get(section) or {})
        merged.update(document.get(section) or {})
        if merged:
            checked[section] = merged
    # tosca-parser knows only its own short interface type names (Standard, Configure)
    interface_types = set(checked.get("interface_types") or {})
    for section in ("node_types", "relationship_types"):
        for definition in (checked.get(section) or {}).values():
            if isinstance(definition, dict) and isinstance(definition.get("interfaces"), dict):
                definition["interfaces"] = {
                    name: _full_interface_type(iface, interface_types) for name, iface in definition["interfaces"].items()}
    checked["topology_template"] = dict(topology_raw)
    # Workflow inputs may be read with get_input in node templates (at run time they are given with
    # `orch run`); tosca-parser only knows topology inputs, so it is told of them as optional ones.
    workflow_inputs = {name: {"type": "string", **{k: v for k, v in (spec or {}).items() if k != "default"},
                              "required": False}
                       for name, spec in workflow_inputs_raw.items() if isinstance(spec, dict) or spec is None}
    topology_inputs = topology_raw.get("inputs") if isinstance(topology_raw.get("inputs"), dict) else {}
    if workflow_inputs:
        checked["topology_template"]["inputs"] = {**workflow_inputs, **topology_inputs}
    checked = copy.deepcopy(checked)
    _drop_orch_operation_keys(checked["topology_template"])
    return checked


def _drop_orch_operation_keys(topology: dict[str, Any]) -> None:
    """`retries` and `retry_delay` on an operation are orch's (build.py reads and checks them); tosca-parser
    refuses any key but implementation/inputs/outputs in a template's operation (it does not look at a type's)."""
    for interfaces in _template_interfaces(topology):
        for interface in interfaces.values():
            for operation in _assigned_operations(interface):
                for key in ORCH_OPERATION_KEYS:
                    operation.pop(key, None)


def _template_interfaces(topology: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The `interfaces` of every node template, relationship template and requirement's own relationship."""
    templates = list(_values(topology.get("relationship_templates")))
    for node in _values(topology.get("node_templates")):
        templates.append(node)
        requirements = node.get("requirements") if isinstance(node, dict) else None
        for requirement in requirements if isinstance(requirements, list) else ():
            templates += [value.get("relationship") for value in _values(requirement) if isinstance(value, dict)]
    for template in templates:
        if isinstance(template, dict) and isinstance(template.get("interfaces"), dict):
            yield template["interfaces"]


def _assigned_operations(interface: Any) -> list[dict[str, Any]]:
    """An interface assignment's operations written as mappings, TOSCA 1.2 style or under `operations:`."""
    if not isinstance(interface, dict):
        return []
    found = [op for name, op in interface.items() if name not in INTERFACE_KEYWORDS and name != "operations"]
    found += _values(interface.get("operations"))
    return [op for op in found if isinstance(op, dict)]


def _values(mapping: Any) -> list[Any]:
    return list(mapping.values()) if isinstance(mapping, dict) else []
