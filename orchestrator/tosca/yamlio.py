"""Reading YAML the user gave us: bounded in size, strict UTF-8, safe against alias bombs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.model import Problem

MAX_FILE_BYTES = 10 * 1024 * 1024
# An alias-expanded document bigger than this is a bomb, not a topology.
MAX_EXPANDED_NODES = 2_000_000

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR, _MAP, _SEQ, _MERGE = (f"tag:yaml.org,2002:{name}" for name in ("str", "map", "seq", "merge"))


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The fast safe loader, refusing duplicate keys (PyYAML silently keeps the last one, so a
    second node template of the same name would replace the first unseen)."""

    def construct_mapping(self, node, deep=False):  # PyYAML's signature
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable key: PyYAML reports it itself
            if duplicate:
                raise _duplicate_key(key, key_node)
        return super().construct_mapping(node, deep)

    def construct_document(self, node):  # PyYAML's signature
        """A topology is mostly strings, mappings and lists: those are built here directly, which takes a
        third of the time PyYAML's general constructor does (each value through its dispatch and, for
        mappings and lists, a generator); anything else (numbers, booleans, timestamps, merge keys, unknown
        tags...) still goes to PyYAML's constructors. Shared (aliased) values stay shared."""
        try:
            data = self._plain(node)
        except RecursionError:  # deeper than Python's stack: PyYAML's constructor is not recursive
            self.constructed_objects, self.recursive_objects, self.state_generators = {}, {}, []
            return super().construct_document(node)
        self.constructed_objects = {}
        return data

    def _plain(self, node):  # ANN202
        if node in self.constructed_objects:
            return self.constructed_objects[node]
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value
        if node.tag == _MAP and isinstance(node, yaml.MappingNode) and all(k.tag != _MERGE for k, _ in node.value):
            mapping: dict = {}
            self.constructed_objects[node] = mapping  # before its values: one of them may be an alias of it
            for key_node, value_node in node.value:
                key = self._plain(key_node)
                try:
                    duplicate = key in mapping
                except TypeError:
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            "found unhashable key", key_node.start_mark) from None
                if duplicate:
                    raise _duplicate_key(key, key_node)
                mapping[key] = self._plain(value_node)
            return mapping
        if node.tag == _SEQ and isinstance(node, yaml.SequenceNode):
            sequence: list = []
            self.constructed_objects[node] = sequence
            for item in node.value:
                sequence.append(self._plain(item))
            return sequence
        return self.construct_object(node, deep=True)


def _duplicate_key(key: Any, key_node: yaml.Node) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)


def read_yaml(path: str | Path, what: str = "file") -> tuple[Any, list[Problem]]:
    """Return (document, problems). On any problem the document is None."""
    name = str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        return None, [Problem(name, "", f"cannot read {what}: {exc.strerror or exc}")]
    if not p.is_file():
        return None, [Problem(name, "", f"{what} is not a regular file")]
    if size > MAX_FILE_BYTES:
        return None, [Problem(name, "", f"{what} is {size // (1024 * 1024)} MB; the limit is "
                              f"{MAX_FILE_BYTES // (1024 * 1024)} MB")]
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, f"byte {exc.start}", "is not valid UTF-8 text")]
    except OSError as exc:
        return None, [Problem(name, "", f"cannot read {what}: {exc.strerror or exc}")]
    return parse_yaml_text(text, name)


def parse_yaml_text(text: str, name: str) -> tuple[Any, list[Problem]]:
    try:
        doc = yaml.load(text, Loader=_Loader)  # a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [Problem(name, place, f"malformed YAML: {exc.problem or exc.context}")]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: no mark, a character offset
        before = text[:exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Problem(name, f"line {line}, column {column}",
                              f"malformed YAML: unacceptable character {character}: {exc.reason}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, "", f"malformed YAML: {exc}")]
    except RecursionError:
        return None, [Problem(name, "", "malformed YAML: nested too deeply")]
    if _expanded_size(doc) > MAX_EXPANDED_NODES:
        return None, [Problem(name, "", "YAML aliases expand to more than "
                              f"{MAX_EXPANDED_NODES:,} values (an alias bomb?)")]
    return doc, []


def _expanded_size(doc: Any) -> int:
    """Size of the document with every alias expanded, counted without expanding it."""
    memo: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        if key in on_path:  # recursive alias: infinite once expanded
            return MAX_EXPANDED_NODES + 1
        on_path.add(key)
        children = node.items() if isinstance(node, dict) else enumerate(node)
        total = 1
        for k, v in children:
            total += size(k) + size(v) if isinstance(node, dict) else size(v)
            if total > MAX_EXPANDED_NODES:
                break
        on_path.discard(key)
        memo[key] = total
        return total

    try:
        return size(doc)
    except RecursionError:
        return MAX_EXPANDED_NODES + 1
