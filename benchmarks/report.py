"""Medians of repeats, ratios to the floor and to xOpera, and the table printed on stdout."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

# per repeat of a deploy case: deploy and undeploy add up; memory is the larger of the two phases
ADDED = ("wall_s", "cpu_s", "self_cpu_s")
PEAKS = ("self_rss_mb", "max_proc_rss_mb", "tree_peak_rss_mb")


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def repeat_summary(deploy: dict, undeploy: dict | None) -> dict[str, float | None]:
    """One repeat of a deploy case as flat numbers (undeploy None: the floor had nothing to undo)."""
    phases = [p for p in (deploy, undeploy) if p is not None]
    summary: dict[str, float | None] = {
        "deploy_wall_s": deploy["wall_s"],
        "undeploy_wall_s": undeploy["wall_s"] if undeploy else 0.0,
    }
    for key in ADDED:
        values = [p[key] for p in phases if p.get(key) is not None]
        summary[f"total_{key}"] = sum(values) if values else None
    for key in PEAKS:
        values = [p[key] for p in phases if p.get(key) is not None]
        summary[key] = max(values) if values else None
    return summary


def medians(runs: list[dict]) -> dict[str, float | None] | None:
    """Median of each number over the repeats that succeeded (None if none did)."""
    good = [r["summary"] for r in runs if r["ok"]]
    if not good:
        return None
    return {key: _median(r.get(key) for r in good) for key in good[0]}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratios(tools: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    orch = (tools.get("orch") or {}).get("median")
    result: dict[str, dict[str, float | None]] = {}
    if not orch:
        return result
    for other in ("floor", "xopera"):
        theirs = (tools.get(other) or {}).get("median")
        if theirs:
            result[f"orch/{other}"] = {
                key: ratio(orch.get(key), theirs.get(key))
                for key in (
                    "deploy_wall_s",
                    "undeploy_wall_s",
                    "total_wall_s",
                    "total_cpu_s",
                    "tree_peak_rss_mb",
                )
            }
    return result


def _fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{suffix}"


# (header, width, key in the medians, digits); keys starting with "orch/" are ratios of total wall time
DEPLOY_COLUMNS = (
    ("deploy s", 10, "deploy_wall_s", 2),
    ("undeploy s", 11, "undeploy_wall_s", 2),
    ("total s", 9, "total_wall_s", 2),
    ("CPU s", 8, "total_cpu_s", 2),
    ("own CPU s", 10, "total_self_cpu_s", 2),
    ("own RSS MB", 11, "self_rss_mb", 0),
    ("tree RSS MB", 12, "tree_peak_rss_mb", 0),
    ("x floor", 9, "orch/floor", 1),
    ("x xOpera", 9, "orch/xopera", 1),
)
PLAN_COLUMNS = (
    ("wall s", 9, "wall_s", 2),
    ("CPU s", 8, "cpu_s", 2),
    ("own RSS MB", 11, "self_rss_mb", 0),
    ("import s", 9, "import_s", 2),
    ("load s", 9, "load_s", 2),
    ("plan s", 8, "plan_s", 2),
    ("render s", 9, "render_s", 2),
    ("steps", 7, "steps", 0),
)
NAME, TOOL = 18, 8


def _row(label: str, columns: tuple, values: dict, n: int) -> str:
    cells = []
    for _, width, key, digits in columns:
        suffix = "x" if key.startswith("orch/") else ""
        cells.append(f"{_fmt(values.get(key), digits, suffix):>{width}}")
    return label + "".join(cells) + f"{n:>3}"


def _header(label: str, columns: tuple) -> list[str]:
    line = label + "".join(f"{title:>{width}}" for title, width, _, _ in columns) + f"{'n':>3}"
    return [line, "-" * len(line)]


def table(results: dict[str, dict]) -> str:
    lines: list[str] = []
    deploy_cases = {k: v for k, v in results.items() if v["case"]["kind"] == "deploy"}
    if deploy_cases:
        lines += _header(f"{'case':<{NAME}}{'tool':<{TOOL}}", DEPLOY_COLUMNS)
    for name, result in deploy_cases.items():
        for tool, data in result["tools"].items():
            label = f"{name:<{NAME}}{tool:<{TOOL}}"
            median = data.get("median")
            if data.get("skipped"):
                lines.append(f"{label}  skipped: {data['skipped']}")
            elif not median:
                lines.append(f"{label}  FAILED: {data.get('error', '')[:80]}")
            else:
                values = dict(median)
                if tool == "orch":  # orch's row carries its ratios to the others
                    for other, found in result["ratios"].items():
                        values[other] = found.get("total_wall_s")
                lines.append(_row(label, DEPLOY_COLUMNS, values, sum(r["ok"] for r in data["runs"])))
    plan_cases = {k: v for k, v in results.items() if v["case"]["kind"] == "plan"}
    if plan_cases:
        lines += ["", *_header(f"{'case (orch)':<{NAME + TOOL}}", PLAN_COLUMNS)]
    for name, result in plan_cases.items():
        data = result["tools"]["orch"]
        label = f"{name:<{NAME + TOOL}}"
        if not data.get("median"):
            lines.append(f"{label}  FAILED: {data.get('error', '')[:80]}")
        else:
            lines.append(_row(label, PLAN_COLUMNS, data["median"], sum(r["ok"] for r in data["runs"])))
    return "\n".join(lines)
