"""The load driver: read → imports → types → inputs → nodes → workflows → tosca-parser validation.

Each phase collects problems; a phase whose input is broken stops the phases that depend on it,
so the user sees every independent problem at once and no cascade of consequences.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from orchestrator.model import LoadError, Problem, Topology
from orchestrator.tosca import csar
from orchestrator.tosca.build import NodeBuilder
from orchestrator.tosca.functions import check_call, iter_functions
from orchestrator.tosca.gcpause import paused_gc
from orchestrator.tosca.imports import collect_imports
from orchestrator.tosca.inputs import parse_input_definitions, resolve_input_values
from orchestrator.tosca.parser import check_with_tosca_parser
from orchestrator.tosca.types import INTERFACE_KEYWORDS, TYPE_SECTIONS, TypeRegistry
from orchestrator.tosca.workflows import parse_workflows
from orchestrator.tosca.yamlio import read_yaml

SUPPORTED_VERSIONS = ("tosca_simple_yaml_1_0", "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3")
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
            entry, problems = csar.unpack_into(Path(path), Path(unpack_dir))
            if problems:
                raise LoadError(problems)
            return _load_template(entry, name, inputs or {}, allow_remote_imports)
        with csar.unpacked(path) as (entry, problems):
            if problems:
                raise LoadError(problems)
            return _load_template(entry, name, inputs or {}, allow_remote_imports)
    return _load_template(Path(path), name, inputs or {}, allow_remote_imports)


def validate(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
             allow_remote_imports: bool = False) -> list[Problem]:
    try:
        load(path, inputs, allow_remote_imports=allow_remote_imports)
    except LoadError as exc:
        return exc.problems
    return []


def _load_template(template: Path, given_path: str, given_inputs: Mapping[str, Any],
                   allow_remote: bool) -> Topology:
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

    imported, problems = collect_imports(document, template_file, allow_remote)
    if problems:
        raise LoadError(problems)
    registry = TypeRegistry.build([(f.document, os.path.dirname(f.location)) for f in imported]
                                  + [(document, base_dir)])
    loops = registry.derivation_loops()
    if loops:  # tosca-parser would walk such a loop forever
        raise LoadError([Problem(file_name, f"types.{name}", "derived_from loop: " + " -> ".join(loop))
                         for name, loop in loops.items()])

    definitions, problems = parse_input_definitions(topology_raw.get("inputs"), file_name,
                                                    "topology_template.inputs")
    input_values, value_problems = resolve_input_values(definitions, given_inputs, file_name,
                                                        "topology_template.inputs")
    problems += value_problems

    workflow_input_names = _workflow_input_names(workflows_raw)
    builder = NodeBuilder(registry, file_name, base_dir, topology_raw.get("relationship_templates") or {},
                          set(definitions) | workflow_input_names)
    raw_nodes = topology_raw.get("node_templates")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        problems.append(Problem(file_name, "topology_template.node_templates", "needs at least one node template"))
        raw_nodes = {}
    nodes = builder.build_all(raw_nodes)
    problems += builder.problems

    workflows, workflow_problems = parse_workflows(workflows_raw, nodes, file_name)
    problems += workflow_problems
    outputs = _outputs(topology_raw.get("outputs"), file_name, set(definitions) | workflow_input_names, set(nodes),
                       problems)
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
            message = check_call(fn, args, inputs, nodes)
            if message:
                problems.append(Problem(file_name, f"topology_template.outputs.{name}.value", message))
        outputs[name] = value
    return outputs


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
