"""The type registry: normative TOSCA types plus every imported and local type definition,
with the inheritance walks tosca-parser does not do for us (operations declared on types)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from toscaparser.elements.entity_type import EntityType

TYPE_SECTIONS = ("node_types", "relationship_types", "capability_types", "interface_types",
                 "data_types", "artifact_types", "policy_types", "group_types")
NORMATIVE_PREFIXES = {"node_types": "tosca.nodes.", "relationship_types": "tosca.relationships.",
                      "capability_types": "tosca.capabilities.", "interface_types": "tosca.interfaces.",
                      "data_types": "tosca.datatypes.", "artifact_types": "tosca.artifacts."}
INTERFACE_KEYWORDS = {"type", "inputs", "description", "derived_from", "version", "notifications"}
_T = TypeVar("_T")
# parents a type may name that are no type definitions of the registry
IMPLICIT_PARENTS = {"tosca.interfaces.Root", "string", "integer", "float", "boolean", "timestamp", "null",
                    "list", "map", "range", "version", "scalar-unit.size", "scalar-unit.time",
                    "scalar-unit.frequency", "scalar-unit.bitrate"}


@dataclass(frozen=True)
class TypeRegistry:
    definitions: Mapping[str, Mapping[str, Any]]  # full type name -> raw definition
    # Walks along derived_from, computed once per type: a topology has thousands of node templates
    # of a handful of types. The definitions are never changed once the registry is built.
    _walks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, documents: list[tuple[Mapping[str, Any], str]], root: str | None = None) -> TypeRegistry:
        """documents: (parsed file, folder it came from), in import order. root: the folder a CSAR was
        unpacked into, for paths that begin with `/`."""
        definitions: dict[str, Mapping[str, Any]] = dict(EntityType.TOSCA_DEF)
        for doc, base_dir in documents:
            inside = root if root is not None and os.path.commonpath([base_dir, root]) == root else None
            for section in TYPE_SECTIONS:
                types = doc.get(section)
                if isinstance(types, dict):
                    definitions.update({k: with_absolute_paths(v or {}, base_dir, inside) if isinstance(v, dict) else {}
                                        for k, v in types.items()})
        return cls(definitions)

    def full_name(self, name: str, section: str = "node_types") -> str:
        if name in self.definitions:
            return name
        prefix = NORMATIVE_PREFIXES.get(section, "")
        return prefix + name if prefix + name in self.definitions else name

    def knows(self, name: str) -> bool:
        return name in self.definitions

    def _walk(self, key: tuple, compute: Callable[[], _T]) -> _T:
        if key not in self._walks:
            self._walks[key] = compute()
        return self._walks[key]

    def lineage(self, name: str) -> tuple[str, ...]:
        """The type and its ancestors, nearest first; stops at unknown types and loops."""
        return self._walk(("lineage", name), lambda: self._lineage(name))

    def _lineage(self, name: str) -> tuple[str, ...]:
        chain: list[str] = []
        current: str | None = name
        while current and current in self.definitions and current not in chain:
            chain.append(current)
            parent = self.definitions[current].get("derived_from")
            current = parent if isinstance(parent, str) else None
        return tuple(chain)

    def derivation_loops(self) -> dict[str, list[str]]:
        """Types whose derived_from chain comes back to a type already on it: name -> the loop."""
        loops: dict[str, list[str]] = {}
        for name in self.definitions:
            chain = [name]
            parent = self.definitions[name].get("derived_from")
            while isinstance(parent, str) and parent in self.definitions:
                if parent in chain:
                    loop = [*chain[chain.index(parent):], parent]
                    if not any(t in loops for t in loop):
                        loops[name] = loop
                    break
                chain.append(parent)
                parent = self.definitions[parent].get("derived_from")
        return loops

    def data_type_base(self, name: str) -> tuple[str | None, tuple[Mapping[str, Any], ...]]:
        """The primitive type a data type derives from (PortDef: integer), None for a complex data type,
        with the constraints it and its ancestors put on values, farthest first."""
        return self._walk(("base", name), lambda: self._data_type_base(name))

    def _data_type_base(self, name: str) -> tuple[str | None, tuple[Mapping[str, Any], ...]]:
        chain = self.lineage(name)
        if not chain:
            return (name if name in IMPLICIT_PARENTS else None), ()
        base = None
        for type_name in chain:  # tosca-parser's own PortDef says `type: integer` instead of deriving from it
            definition = self.definitions[type_name]
            for key in ("type", "derived_from"):
                value = definition.get(key)
                if base is None and isinstance(value, str) and value in IMPLICIT_PARENTS:
                    base = value
        constraints = [c for t in reversed(chain) for c in (self.definitions[t].get("constraints") or [])
                       if isinstance(c, dict) and len(c) == 1]
        return base, tuple(constraints)

    def knows_interface_type(self, name: str) -> bool:
        """A full interface type name, or the short name of exactly one known interface type (Standard)."""
        if self.knows(self.full_name(name, "interface_types")):
            return True
        return "." not in name and any(t.rsplit(".", 1)[-1] == name for t in self.definitions)

    def _from_root(self, name: str) -> Iterator[Mapping[str, Any]]:
        for type_name in reversed(self.lineage(name)):
            yield self.definitions[type_name]

    def merged_section(self, name: str, section: str) -> dict[str, Any]:
        """properties/attributes/capabilities of a type with its ancestors', nearest wins (a fresh dict)."""
        return dict(self._walk(("section", name, section), lambda: self._merged_section(name, section)))

    def _merged_section(self, name: str, section: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for definition in self._from_root(name):
            value = definition.get(section)
            if isinstance(value, dict):
                merged.update(value)
        return merged

    def requirement_definitions(self, name: str) -> dict[str, Mapping[str, Any]]:
        return dict(self._walk(("requirements", name), lambda: self._requirement_definitions(name)))

    def _requirement_definitions(self, name: str) -> dict[str, Mapping[str, Any]]:
        merged: dict[str, Mapping[str, Any]] = {}
        for definition in self._from_root(name):
            for entry in definition.get("requirements") or []:
                if isinstance(entry, dict):
                    for req_name, req_def in entry.items():
                        # the short form names the capability type (TOSCA 1.3, requirement definition)
                        merged[req_name] = req_def if isinstance(req_def, dict) else {"capability": req_def}
        return merged

    def interface_operations(self, name: str) -> dict[str, dict[str, dict[str, Any]]]:
        """interface short name -> operation name -> merged operation definition, along derived_from
        (fresh mappings of interfaces and of operations, for the caller to refine)."""
        walked = self._walk(("interfaces", name), lambda: self._interface_operations(name))
        return {short: dict(ops) for short, ops in walked.items()}

    def _interface_operations(self, name: str) -> dict[str, dict[str, dict[str, Any]]]:
        merged: dict[str, dict[str, dict[str, Any]]] = {}
        shared: dict[str, dict[str, Any]] = {}
        for definition in self._from_root(name):
            for iface_name, iface in (definition.get("interfaces") or {}).items():
                if not isinstance(iface, dict):
                    continue
                short = interface_short_name(iface_name, iface.get("type"))
                ops = merged.setdefault(short, {})
                for op_name, op_def in operations_of(iface).items():
                    ops[op_name] = merge_operation(ops.get(op_name, {}), op_def)
                if isinstance(iface.get("inputs"), dict):
                    shared.setdefault(short, {}).update(iface["inputs"])
        # an interface's inputs are available to all its operations (TOSCA 1.3 §3.7.5); an operation's
        # own inputs of the same name win
        for short, inputs in shared.items():
            for op_name, op in merged[short].items():
                merged[short][op_name] = {**op, "inputs": {**inputs, **(op.get("inputs") or {})}}
        return merged

    def interface_type_operations(self, interface_type: str) -> set[str]:
        return set(self._walk(("interface_type", interface_type),
                              lambda: self._interface_type_operations(interface_type)))

    def _interface_type_operations(self, interface_type: str) -> set[str]:
        ops: set[str] = set()
        for definition in self._from_root(interface_type):
            ops.update(k for k in definition if k not in INTERFACE_KEYWORDS and k != "operations")
            ops.update((definition.get("operations") or {}).keys())
        return ops


def type_definition_problems(document: Mapping[str, Any], registry: TypeRegistry) -> list[tuple[str, str]]:
    """(place, message) for each type of one file whose parent or interface type no file defines."""
    found: list[tuple[str, str]] = []
    for section in TYPE_SECTIONS:
        types = document.get(section)
        if not isinstance(types, dict):
            continue
        for name, definition in types.items():
            if not isinstance(definition, dict):
                continue
            parent = definition.get("derived_from")
            if isinstance(parent, str) and parent not in IMPLICIT_PARENTS \
                    and not registry.knows(registry.full_name(parent, section)):
                found.append((f"{section}.{name}.derived_from", f"unknown parent type '{parent}'"))
            interfaces = definition.get("interfaces") if section in ("node_types", "relationship_types") else None
            for iface_name, iface in (interfaces.items() if isinstance(interfaces, dict) else ()):
                iface_type = iface.get("type") if isinstance(iface, dict) else None
                if isinstance(iface_type, str) and not registry.knows_interface_type(iface_type):
                    found.append((f"{section}.{name}.interfaces.{iface_name}",
                                  f"unknown interface type '{iface_type}'"))
            found += [(f"{section}.{name}.{place}", message)
                      for place, message in _referenced_type_problems(definition, registry)]
    return found


def _referenced_type_problems(definition: Mapping[str, Any], registry: TypeRegistry) -> Iterator[tuple[str, str]]:
    """The types a type definition names for its properties, attributes, capabilities, requirements and
    artifacts, when no file defines them: what a type library is checked for before any template uses it
    (tosca-parser looks at a type only when a template does)."""
    for section in ("properties", "attributes"):
        definitions = definition.get(section)
        for prop, spec in definitions.items() if isinstance(definitions, dict) else ():
            for key, value in ((k, spec.get(k)) for k in ("type", "entry_schema", "key_schema")) \
                    if isinstance(spec, dict) else ():
                value = value.get("type") if isinstance(value, dict) else value
                if isinstance(value, str) and value not in IMPLICIT_PARENTS and not registry.knows(value):
                    found_at = f"{section}.{prop}" + ("" if key == "type" else f".{key}")
                    yield found_at, f"unknown data type '{value}'"
    capabilities = definition.get("capabilities")
    for cap, spec in capabilities.items() if isinstance(capabilities, dict) else ():
        cap_type = spec.get("type") if isinstance(spec, dict) else spec
        if isinstance(cap_type, str) and not registry.knows(cap_type):
            yield f"capabilities.{cap}", f"unknown capability type '{cap_type}'"
    requirements = definition.get("requirements")
    for i, entry in enumerate(requirements if isinstance(requirements, list) else ()):
        for req, spec in entry.items() if isinstance(entry, dict) else ():
            spec = spec if isinstance(spec, dict) else {"capability": spec}
            relationship = spec.get("relationship")
            relationship = relationship.get("type") if isinstance(relationship, dict) else relationship
            for what, value in (("capability", spec.get("capability")), ("node", spec.get("node")),
                                ("relationship", relationship)):
                if isinstance(value, str) and not registry.knows(value):
                    yield f"requirements[{i}].{req}.{what}", f"unknown {what} type '{value}'"
    artifacts = definition.get("artifacts")
    for artifact, spec in artifacts.items() if isinstance(artifacts, dict) else ():
        artifact_type = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(artifact_type, str) and not registry.knows(artifact_type):
            yield f"artifacts.{artifact}", f"unknown artifact type '{artifact_type}'"


def interface_short_name(name: str, type_name: Any = None) -> str:
    for candidate in (type_name, name):
        if isinstance(candidate, str) and candidate.startswith("tosca.interfaces."):
            return candidate.rsplit(".", 1)[-1]
    return name.rsplit(".", 1)[-1] if name.startswith("tosca.interfaces.") else name


def operations_of(interface: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Operations of an interface definition or assignment, TOSCA 1.2 style or 1.3 `operations:`."""
    raw: dict[str, Any] = {}
    if isinstance(interface.get("operations"), dict):
        raw.update(interface["operations"])
    raw.update({k: v for k, v in interface.items() if k not in INTERFACE_KEYWORDS and k != "operations"})
    return {name: normalize_operation(value) for name, value in raw.items()}


def normalize_operation(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"implementation": value}
    if isinstance(value, dict):
        return dict(value)
    return {"implementation": value}


def merge_operation(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A derived type or a template refines an operation: inputs and outputs merge, the rest is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("inputs", "outputs") and isinstance(value, dict) and isinstance(base.get(key) or {}, dict):
            merged[key] = {**(base.get(key) or {}), **value}
        elif value is not None:
            merged[key] = value
    return merged


class WrittenPath(str):
    """An absolute path that remembers how the template wrote it: an implementation written `configure` may
    be the node's artifact of that name rather than a file beside the template."""

    written: str

    def __new__(cls, path: str, written: str | None = None) -> WrittenPath:
        made = super().__new__(cls, path)
        made.written = path if written is None else written
        return made


def written_form(path: Any) -> Any:
    return path.written if isinstance(path, WrittenPath) else path


def with_absolute_paths(definition: Mapping[str, Any], base_dir: str, root: str | None = None) -> dict[str, Any]:
    """A type's playbooks and artifacts are relative to the file that declares the type (or, beginning with
    `/` inside a CSAR, to the archive's root)."""
    result = dict(definition)
    interfaces = definition.get("interfaces")
    if isinstance(interfaces, dict):
        result["interfaces"] = {
            name: absolutize_interface(iface, base_dir, root) if isinstance(iface, dict) else iface
            for name, iface in interfaces.items()}
    artifacts = definition.get("artifacts")
    if isinstance(artifacts, dict):
        result["artifacts"] = {name: absolutize_artifact(a, base_dir, root) for name, a in artifacts.items()}
    return result


def absolutize_interface(interface: Mapping[str, Any], base_dir: str, root: str | None = None) -> dict[str, Any]:
    result = {k: v for k, v in interface.items() if k in INTERFACE_KEYWORDS}
    for op_name, op in operations_of(interface).items():
        result[op_name] = absolutize_operation(op, base_dir, root)
    return result


def absolutize_operation(op: Mapping[str, Any], base_dir: str, root: str | None = None) -> dict[str, Any]:
    result = dict(op)
    impl = op.get("implementation")
    if isinstance(impl, str):
        result["implementation"] = _absolute(impl, base_dir, root)
    elif isinstance(impl, dict):
        impl = dict(impl)
        if "file" in impl and "primary" not in impl:  # a bare artifact definition
            impl = absolutize_artifact(impl, base_dir, root)
        else:
            if "primary" in impl:
                impl["primary"] = absolutize_artifact(impl["primary"], base_dir, root)
            if isinstance(impl.get("dependencies"), list):
                impl["dependencies"] = [absolutize_artifact(d, base_dir, root) for d in impl["dependencies"]]
        result["implementation"] = impl
    return result


def absolutize_artifact(artifact: Any, base_dir: str, root: str | None = None) -> Any:
    """An artifact's file as an absolute path, except a URL and a file of a repository (TOSCA 1.3: then the
    file is a path in the repository, never on this machine)."""
    if isinstance(artifact, str):
        return _absolute(artifact, base_dir, root)
    if isinstance(artifact, dict) and isinstance(artifact.get("file"), str) and not artifact.get("repository"):
        return {**artifact, "file": _absolute(artifact["file"], base_dir, root)}
    return artifact


def _absolute(path: str, base_dir: str, root: str | None = None) -> str:
    if "://" in path:
        return path
    if path.startswith("/"):
        # inside a CSAR, a path from its root (TOSCA 1.3); elsewhere, a path on this machine
        return WrittenPath(os.path.normpath(root + path), path) if root is not None else path
    return WrittenPath(os.path.normpath(os.path.join(base_dir, path)), path)
