"""The load driver: read → imports → types → inputs → nodes → workflows → tosca-parser validation.

Each phase collects problems; a phase whose input is broken stops the phases that depend on it,
so the user sees every independent problem at once and no cascade of consequences.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from orchestrator.model import LoadError, Problem, Topology, Validation
from orchestrator.tosca import csar
from orchestrator.tosca.build import NodeBuilder
from orchestrator.gcpause import paused_gc
from orchestrator.tosca.imports import SUPPORTED_VERSIONS, collect_imports
from orchestrator.tosca.inputs import parse_input_definitions, resolve_input_values
from orchestrator.tosca.names import use_full_names
from orchestrator.tosca.outputs import parse_outputs
from orchestrator.tosca.parser import check_with_tosca_parser
from orchestrator.tosca.parser_view import parser_view
from orchestrator.tosca.policies import group_problems, policies_of, policy_problems
from orchestrator.tosca.types import TypeRegistry, type_definition_problems
from orchestrator.tosca.workflows import parse_workflows
from orchestrator.tosca.yamlio import read_yaml

TOPOLOGY_KEYS = {"description", "inputs", "node_templates", "relationship_templates", "outputs", "groups",
                 "policies", "substitution_mappings", "workflows"}


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
    use_full_names([f.document for f in imported] + [document])
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
                                                          "topology_template.inputs", known_data_type,
                                                          registry.data_type_base)
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

    workflows, workflow_problems = parse_workflows(workflows_raw, nodes, file_name, known_data_type,
                                                   registry.data_type_base)
    problems += workflow_problems
    outputs = parse_outputs(topology_raw.get("outputs"), file_name, set(definitions) | workflow_input_names,
                            set(nodes), problems, known_data_type)
    groups = topology_raw.get("groups")
    problems += group_problems(groups, set(raw_nodes), file_name)
    problems += policy_problems(topology_raw.get("policies"), registry, set(raw_nodes),
                                set(groups) if isinstance(groups, dict) else set(), file_name)
    if problems:
        raise LoadError(problems)

    checked = parser_view(document, topology_raw, imported, _workflow_input_specs(workflows_raw), registry)
    parser_inputs = {k: v for k, v in input_values.items() if not isinstance(v, dict)}
    problems = check_with_tosca_parser(checked, parser_inputs, file_name)
    if problems:
        raise LoadError(problems)
    return Topology(path=given_path, template_file=template_file, base_dir=base_dir,
                    description=str(document.get("description", "") or ""), inputs=definitions,
                    input_values=input_values, nodes=nodes, outputs=outputs, workflows=workflows,
                    policies=policies_of(topology_raw.get("policies")))


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
