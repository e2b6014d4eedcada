"""The load driver: read → imports → types → inputs → nodes → workflows → tosca-parser validation.

Each phase collects problems; a phase whose input is broken stops the phases that depend on it,
so the user sees every independent problem at once and no cascade of consequences.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.gcpause import paused_gc
from orchestrator.model import LoadError, NodeTemplate, Problem, RelationshipTemplate, Topology, Validation
from orchestrator.tosca import csar
from orchestrator.tosca.build import NodeBuilder
from orchestrator.tosca.datavalues import data_value_problems
from orchestrator.tosca.imports import collect_imports, version_problem
from orchestrator.tosca.inputs import parse_input_definitions, resolve_input_values
from orchestrator.tosca.names import use_full_names
from orchestrator.tosca.outputs import parse_outputs
from orchestrator.tosca.parser import check_with_tosca_parser
from orchestrator.tosca.parser_view import parser_view
from orchestrator.tosca.policies import group_problems, policies_of, policy_problems
from orchestrator.tosca.types import TYPE_SECTIONS, TypeRegistry, type_definition_problems
from orchestrator.tosca.workflows import parse_workflows
from orchestrator.tosca.yamlio import read_yaml

TOPOLOGY_KEYS = {"description", "inputs", "node_templates", "relationship_templates", "outputs", "groups",
                 "policies", "substitution_mappings", "workflows"}


@dataclass(frozen=True)
class _Loaded:
    """What a template turned out to be: a topology, or (when only checked) a type library (None), with the
    required inputs that have no value yet (only when checked: deploy and plan refuse them)."""

    topology: Topology | None
    needs_inputs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # every file (or URL) read to make it: the template first, then its imports


def load(path: str | Path, inputs: Mapping[str, Any] | None = None, *, allow_remote_imports: bool = False,
         unpack_dir: str | Path | None = None) -> Topology:
    """Load a service template (YAML or CSAR). Raises LoadError with every problem found.

    A CSAR is unpacked into `unpack_dir` when given (the deployment keeps its playbooks there), else
    into a temporary folder that is removed before this returns.
    """
    return load_with_files(path, inputs, allow_remote_imports=allow_remote_imports, unpack_dir=unpack_dir)[0]


def load_with_files(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
                    allow_remote_imports: bool = False,
                    unpack_dir: str | Path | None = None) -> tuple[Topology, tuple[str, ...]]:
    """`load`, with the files it read (the template, then each import, orch's shipped type files included;
    URLs for remote imports): what a kept copy of the topology must be checked against."""
    loaded = _guarded(path, inputs, allow_remote_imports, unpack_dir, for_check=False)
    assert loaded.topology is not None  # only a check accepts a type library
    return loaded.topology, loaded.files


def check(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
          allow_remote_imports: bool = False) -> Validation:
    """`orch validate`: the template checked as deploy would check it, except that required inputs without a
    value are listed (`needs_inputs`) instead of refused, and that a file of type definitions alone (a type
    library) is checked as such (kind "types"). Raises LoadError with every problem."""
    loaded = _guarded(path, inputs, allow_remote_imports, None, for_check=True)
    if loaded.topology is None:
        return Validation(str(path), "types", 0, 0)
    return Validation(str(path), "topology", len(loaded.topology.nodes), len(loaded.topology.workflows),
                      loaded.needs_inputs)


def _guarded(path: str | Path, inputs: Mapping[str, Any] | None, allow_remote_imports: bool,
             unpack_dir: str | Path | None, *, for_check: bool) -> _Loaded:
    name = str(path)
    try:
        with paused_gc():
            return _load(path, name, inputs, allow_remote_imports, unpack_dir, for_check)
    except LoadError:
        raise
    except RecursionError:
        raise LoadError([Problem(name, "", "nested too deeply to be a topology")]) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, StopIteration) as exc:
        # A value of the wrong shape (a list where a mapping belongs, ...) that no check named more
        # precisely: still the user's input, so a problem and exit 2, never a traceback.
        raise LoadError([Problem(name, "", f"malformed template structure ({type(exc).__name__}: {exc})")]) from None


def _load(path: str | Path, name: str, inputs: Mapping[str, Any] | None, allow_remote_imports: bool,
          unpack_dir: str | Path | None, for_check: bool) -> _Loaded:
    if csar.is_csar(name):
        if unpack_dir is not None:
            # validated in a fresh folder first: a refused archive must leave the deployed files as they were
            directory = Path(unpack_dir)
            fresh, entry, problems = csar.unpack_beside(Path(path), directory)
            if problems or fresh is None or entry is None:
                raise LoadError(problems)
            try:
                _load_template(entry, name, inputs or {}, allow_remote_imports, fresh, for_check)
            except BaseException:
                csar.discard(fresh, directory)
                raise
            csar.swap_in(fresh, directory)
            # read again where it stays: the model's paths (playbooks, artifacts) point into the folder
            return _load_template(directory / entry.relative_to(fresh), name, inputs or {}, allow_remote_imports,
                                  directory, for_check)
        with csar.unpacked(path) as (root, entry, problems):
            if problems or entry is None:
                raise LoadError(problems)
            return _load_template(entry, name, inputs or {}, allow_remote_imports, root, for_check)
    return _load_template(Path(path), name, inputs or {}, allow_remote_imports, None, for_check)


def validate(path: str | Path, inputs: Mapping[str, Any] | None = None, *,
             allow_remote_imports: bool = False) -> list[Problem]:
    try:
        load(path, inputs, allow_remote_imports=allow_remote_imports)
    except LoadError as exc:
        return exc.problems
    return []


def _load_template(template: Path, given_path: str, given_inputs: Mapping[str, Any],
                   allow_remote: bool, archive_root: Path | None = None, for_check: bool = False) -> _Loaded:
    """archive_root: the folder a CSAR was unpacked into, which its template's files must not leave.
    for_check: `check`'s leniencies (a type library, required inputs without values)."""
    file_name = str(template) if given_path == str(template) else f"{given_path}!{template.name}"
    document, problems = read_yaml(template, "template")
    if problems:
        raise LoadError(problems)
    problems = _check_shape(document, file_name, for_check)
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
                                  + [(document, base_dir)], confine)
    loops = registry.derivation_loops()
    if loops:  # tosca-parser would walk such a loop forever
        raise LoadError([Problem(file_name, f"types.{name}", "derived_from loop: " + " -> ".join(loop))
                         for name, loop in loops.items()])

    problems = [Problem(shown(owner), place, message)
                for owner, doc in [(f.location, f.document) for f in imported] + [(template_file, document)]
                for place, message in type_definition_problems(doc, registry)]
    if "topology_template" not in document:  # a type library (only `check` gets here with one)
        if problems:
            raise LoadError(problems)
        problems = check_with_tosca_parser(parser_view(document, {}, imported, {}, registry), {}, file_name)
        if problems:
            raise LoadError(problems)
        return _Loaded(None)

    def known_data_type(name: str) -> bool:
        return registry.knows(registry.full_name(name, "data_types"))

    definitions, input_problems = parse_input_definitions(topology_raw.get("inputs"), file_name,
                                                          "topology_template.inputs", known_data_type,
                                                          registry.data_type_base)
    problems += input_problems
    # what deploy will need: a check lists them, deploy and plan refuse to start without them
    needs_inputs = tuple(name for name, d in definitions.items()
                         if d.required and not d.has_default and name not in given_inputs) if for_check else ()
    input_values, value_problems = resolve_input_values(
        {name: d for name, d in definitions.items() if name not in needs_inputs}, given_inputs, file_name,
        "topology_template.inputs")
    problems += value_problems
    problems += [Problem(file_name, place, message)
                 for name, definition in definitions.items()
                 if name in input_values and registry.knows(definition.type)
                 and registry.data_type_base(definition.type)[0] is None
                 for place, message in data_value_problems(input_values[name], definition.type, registry,
                                                           f"topology_template.inputs.{name}")]

    workflow_input_names = _workflow_input_names(workflows_raw)
    builder = NodeBuilder(registry, file_name, base_dir, topology_raw.get("relationship_templates") or {},
                          set(definitions) | workflow_input_names, confine, input_values)
    raw_nodes = topology_raw.get("node_templates")
    if raw_nodes is not None and not isinstance(raw_nodes, dict):
        problems.append(Problem(file_name, "topology_template.node_templates", "must be a mapping of node templates"))
        raw_nodes = {}
    elif not raw_nodes and not topology_raw.get("relationship_templates"):
        problems.append(Problem(file_name, "topology_template.node_templates",
                                "needs at least one node template (or relationship template)"))
    raw_nodes = raw_nodes or {}
    nodes = builder.build_all(raw_nodes)
    problems += builder.problems

    workflows, workflow_problems = parse_workflows(workflows_raw, nodes, file_name, known_data_type,
                                                   registry.data_type_base)
    problems += workflow_problems
    outputs = parse_outputs(topology_raw.get("outputs"), file_name, set(definitions) | workflow_input_names,
                            set(nodes), problems, known_data_type, set(builder.relationship_templates),
                            builder.output_reference)
    groups = topology_raw.get("groups")
    problems += group_problems(groups, set(raw_nodes), file_name)
    problems += policy_problems(topology_raw.get("policies"), registry, set(raw_nodes),
                                set(groups) if isinstance(groups, dict) else set(), file_name)
    if problems:
        raise LoadError(problems)

    checked = parser_view(document, topology_raw, imported, _workflow_input_specs(workflows_raw), registry, nodes)
    parser_inputs = {k: v for k, v in input_values.items() if not isinstance(v, dict)}
    problems = check_with_tosca_parser(checked, parser_inputs, file_name)
    if problems:
        raise LoadError(problems)
    return _Loaded(Topology(path=given_path, template_file=template_file, base_dir=base_dir,
                            description=str(document.get("description", "") or ""), inputs=definitions,
                            input_values=input_values, nodes=nodes, outputs=outputs, workflows=workflows,
                            policies=policies_of(topology_raw.get("policies")),
                            relationship_templates=_with_instances(builder.built_relationship_templates,
                                                                   nodes)), needs_inputs,
                   (template_file, *(f.location for f in imported)))


def _with_instances(templates: Mapping[str, RelationshipTemplate],
                    nodes: Mapping[str, NodeTemplate]) -> dict[str, RelationshipTemplate]:
    """Each relationship template with the requirements that use it."""
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in nodes.values():
        for i, requirement in enumerate(node.requirements):
            if requirement.template is not None:
                uses.setdefault(requirement.template, []).append((node.name, i))
    return {name: replace(template, instances=tuple(uses.get(name, ()))) for name, template in templates.items()}


def _check_shape(document: Any, file_name: str, types_alone_ok: bool = False) -> list[Problem]:
    if not isinstance(document, dict):
        return [Problem(file_name, "", "a service template must be a YAML mapping")]
    version = document.get("tosca_definitions_version")
    if version is None:
        return [Problem(file_name, "tosca_definitions_version", "is missing; use tosca_simple_yaml_1_3")]
    if version_problem(version):
        return [Problem(file_name, "tosca_definitions_version", str(version_problem(version)))]
    topology = document.get("topology_template")
    if topology is None and "topology_template" not in document:
        if not any(section in document for section in (*TYPE_SECTIONS, "imports")):
            return [Problem(file_name, "topology_template", "is missing or not a mapping, and the file defines "
                            "no types either")]
        if not types_alone_ok:
            return [Problem(file_name, "topology_template", "is missing: this file only defines types (a type "
                            "library, which `orch validate` checks); deploy and plan need a topology_template")]
        return []
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
