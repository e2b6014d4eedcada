"""Input definitions and values: defaults, required inputs, types and constraints (which tosca-parser
only warns about or ignores)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.model import InputDefinition, Problem
from orchestrator.tosca.functions import as_function

_SCALARS = {"string", "integer", "float", "boolean", "timestamp", "version", "scalar-unit.size",
            "scalar-unit.time", "scalar-unit.frequency", "scalar-unit.bitrate"}


DataTypeBase = Callable[[str], tuple["str | None", tuple[Mapping[str, Any], ...]]]


def parse_input_definitions(raw: Any, file_name: str, where: str, known_data_type: Callable[[str], bool] | None = None,
                            data_type_base: DataTypeBase | None = None
                            ) -> tuple[dict[str, InputDefinition], list[Problem]]:
    """known_data_type: whether a type name that is not a TOSCA primitive names a data type (None: any).
    data_type_base: the primitive a data type derives from and its constraints (TypeRegistry.data_type_base);
    an input of such a type (PortDef) is that primitive under those constraints and its own."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [Problem(file_name, where, "must be a mapping of input definitions")]
    definitions: dict[str, InputDefinition] = {}
    problems: list[Problem] = []
    for name, spec in raw.items():
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            problems.append(Problem(file_name, f"{where}.{name}", "must be a mapping with at least a type"))
            continue
        constraints = spec.get("constraints") or []
        if not isinstance(constraints, list) or not all(isinstance(c, dict) and len(c) == 1 for c in constraints):
            problems.append(Problem(file_name, f"{where}.{name}.constraints",
                                    "must be a list of one-key constraint clauses"))
            constraints = []
        type_name = spec.get("type", "string")
        if not isinstance(type_name, str) or not is_known_type(type_name, known_data_type):
            problems.append(Problem(file_name, f"{where}.{name}.type", f"unknown type '{type_name}' (a TOSCA "
                                    "type such as string, integer, float, boolean, list, map, or a data type)"))
        for clause in constraints:
            (operator, bound), = clause.items()
            if operator == "pattern":
                try:
                    re.compile(str(bound))
                except re.error as exc:
                    problems.append(Problem(file_name, f"{where}.{name}.constraints",
                                            f"pattern {bound!r} is not a valid regular expression ({exc})"))
        constraints = [c for c in constraints if next(iter(c)) != "pattern" or _compiles(next(iter(c.values())))]
        type_name = str(type_name)
        if data_type_base is not None and type_name not in _SCALARS and type_name not in ("list", "map") \
                and is_known_type(type_name, known_data_type):
            base, inherited = data_type_base(type_name)
            if base is not None:
                type_name, constraints = base, [*inherited, *constraints]
        definitions[name] = InputDefinition(
            name=name,
            type=type_name,
            required=bool(spec.get("required", True)),
            default=spec.get("default"),
            has_default="default" in spec,
            constraints=tuple(constraints),
            description=str(spec.get("description", "")),
        )
    return definitions, problems


def is_known_type(type_name: str, known_data_type: Callable[[str], bool] | None = None) -> bool:
    """A TOSCA primitive type, list or map, or a data type (whatever the name when known_data_type is None)."""
    return type_name in _SCALARS or type_name in ("list", "map") or known_data_type is None \
        or known_data_type(type_name)


def _compiles(pattern: Any) -> bool:
    try:
        re.compile(str(pattern))
    except re.error:
        return False
    return True


def resolve_input_values(definitions: Mapping[str, InputDefinition], given: Mapping[str, Any],
                         file_name: str, where: str = "inputs") -> tuple[dict[str, Any], list[Problem]]:
    """Values for every declared input: given, else default; then typed and checked."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, definition in definitions.items():
        place = f"{where}.{name}"
        if name in given:
            value = given[name]
        elif definition.has_default:
            value = definition.default
        elif definition.required:
            problems.append(Problem(file_name, place, "required input has no value; give it with -i FILE or "
                                    f"--set {name}=VALUE"))
            continue
        else:
            continue
        value, problem = coerce(value, definition.type)
        if problem:
            problems.append(Problem(file_name, place, problem))
            continue
        problems.extend(Problem(file_name, place, p)
                        for p in check_constraints(name, value, definition.constraints, definition.type))
        values[name] = value
    return values, problems


def coerce(value: Any, type_name: str) -> tuple[Any, str | None]:
    """Values from --set arrive as strings; make them the declared type or say why not (without showing
    the value: an input may be a secret)."""
    if as_function(value):
        return value, None  # a function (a default made of other inputs, get_secret, ...) is evaluated later
    try:
        if type_name == "integer":
            if isinstance(value, bool):
                raise ValueError
            return (value if isinstance(value, int) else int(str(value), 0)), None
        if type_name == "float":
            if isinstance(value, bool):
                raise ValueError
            return (value if isinstance(value, float) else float(value)), None
        if type_name == "boolean":
            if isinstance(value, bool):
                return value, None
            lowered = str(value).lower()
            if lowered in ("true", "yes", "1"):
                return True, None
            if lowered in ("false", "no", "0"):
                return False, None
            raise ValueError
        if type_name == "list":
            return (value, None) if isinstance(value, list) else (value, _not_a(type_name, value))
        if type_name == "map":
            return (value, None) if isinstance(value, dict) else (value, _not_a(type_name, value))
        if type_name in _SCALARS:
            if isinstance(value, (dict, list)) or (type_name != "string" and isinstance(value, bool)):
                return value, _not_a(type_name, value)
            text = str(value)
            # checked here, not by tosca-parser, whose messages show the value (an input may be a secret)
            if type_name in _UNITS:
                match = _SCALAR.match(text)
                if not match or match.group(2).lower() not in _UNITS[type_name]:
                    return value, _not_a(type_name, value)
            if type_name == "version" and not _VERSION.match(text):
                return value, _not_a(type_name, value)
            return text, None
    except (TypeError, ValueError):
        return value, _not_a(type_name, value)
    return value, None  # a data type: checked by tosca-parser


def _not_a(type_name: str, value: Any) -> str:
    """What was given instead of a `type_name`, by its kind only."""
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (list, "a list"), (dict, "a map"),
             (str, f"text that is not a valid {type_name}"))
    given = next((kind for cls, kind in kinds if isinstance(value, cls)), f"a value that is not a valid {type_name}")
    return f"expected a {type_name}, got {given}"


_UNITS = {
    "scalar-unit.size": {"b": 1, "kb": 1e3, "kib": 2**10, "mb": 1e6, "mib": 2**20, "gb": 1e9, "gib": 2**30,
                         "tb": 1e12, "tib": 2**40},
    "scalar-unit.time": {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "scalar-unit.frequency": {"hz": 1, "khz": 1e3, "mhz": 1e6, "ghz": 1e9},
    "scalar-unit.bitrate": {"bps": 1, "kbps": 1e3, "kibps": 2**10, "mbps": 1e6, "mibps": 2**20, "gbps": 1e9,
                            "gibps": 2**30, "tbps": 1e12, "tibps": 2**40},
}
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)?(\.[0-9]+)?(\.[0-9A-Za-z]+)?(-[0-9]+)?$")
_SCALAR = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]+)\s*$")


def comparable(value: Any, type_name: str) -> Any:
    """A value as TOSCA compares it: scalar-units in their base unit, versions part by part."""
    if type_name in _UNITS:
        match = _SCALAR.match(str(value))
        if not match or match.group(2).lower() not in _UNITS[type_name]:
            raise ValueError(f"'{value}' is not a {type_name}")
        return float(match.group(1)) * _UNITS[type_name][match.group(2).lower()]
    if type_name == "version":
        return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", str(value)))
    return value


def check_constraints(name: str, value: Any, constraints: tuple[Mapping[str, Any], ...],
                      type_name: str = "string") -> list[str]:
    """The constraints of input `name` that `value` breaks, each named with its bound (which the template
    wrote) but never with the value (which may be a secret)."""
    failures: list[str] = []
    for clause in constraints:
        (operator, bound), = clause.items()
        try:
            if operator in _ORDERED:
                ok = _CHECKS[operator](comparable(value, type_name), _comparable_bound(bound, type_name))
            else:
                ok = _CHECKS[operator](value, bound)
        except KeyError:
            failures.append(f"unknown constraint '{operator}'")
            continue
        except (TypeError, ValueError, re.error):
            ok = False
        if not ok:
            failures.append(f"input '{name}' violates constraint {operator}: {bound!r}")
    return failures


_ORDERED = {"greater_than", "greater_or_equal", "less_than", "less_or_equal", "in_range"}


def _comparable_bound(bound: Any, type_name: str) -> Any:
    if isinstance(bound, list):
        return [b if b == "UNBOUNDED" else comparable(b, type_name) for b in bound]
    return comparable(bound, type_name)


def _in_range(value: Any, bounds: list[Any]) -> bool:
    low, high = bounds
    return (low == "UNBOUNDED" or low <= value) and (high == "UNBOUNDED" or value <= high)


_CHECKS = {
    "equal": lambda v, b: v == b,
    "greater_than": lambda v, b: v > b,
    "greater_or_equal": lambda v, b: v >= b,
    "less_than": lambda v, b: v < b,
    "less_or_equal": lambda v, b: v <= b,
    "in_range": _in_range,
    "valid_values": lambda v, b: v in b,
    "length": lambda v, b: len(v) == b,
    "min_length": lambda v, b: len(v) >= b,
    "max_length": lambda v, b: len(v) <= b,
    "pattern": lambda v, b: re.fullmatch(b, str(v)) is not None,
}
