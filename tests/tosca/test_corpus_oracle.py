"""tosca-parser's own test corpus through orch's `check`, against tosca-parser 2.15's verdicts.

The corpus and its verdicts (`ORACLE.tsv`: path, then VALID or INVALID and the exception's name) live in
../shared/corpus/toscaparser-data/, beside the repository, and are read at run time, never copied in.
orch must never raise anything but LoadError on them, and every file where orch's verdict is not the
oracle's is listed in tests/tosca/corpus_differences.tsv with the rule that makes orch right (or the part
of TOSCA orch leaves out): a new difference, or a listed one that went away, fails the test, so the table
stays the truth.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from orchestrator.model import LoadError
from orchestrator.tosca.loader import check

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "toscaparser-data"
SAMPLES = CORPUS / "samples" / "tests" / "data"
TABLE = Path(__file__).with_name("corpus_differences.tsv")


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def _oracle() -> dict[str, str]:
    if not (CORPUS / "ORACLE.tsv").is_file():
        message = f"tosca-parser's corpus is not at {CORPUS} (the shared folder beside the repository)"
        if _under_ci():
            pytest.fail(message + "; CI must have it", pytrace=False)
        pytest.skip(message)
    verdicts = {}
    for line in (CORPUS / "ORACLE.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            path, verdict = line.split("\t", 1)
            verdicts[path] = verdict.split()[0]
    return verdicts


def _table() -> dict[str, dict[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    table = {row["file"]: row for row in rows}
    assert len(table) == len(rows), "a file is listed twice in corpus_differences.tsv"
    return table


def orch_verdict(path: Path) -> tuple[str, str]:
    """(VALID or INVALID, what orch said). Any exception but LoadError propagates: a traceback."""
    try:
        found = check(path)
    except LoadError as exc:
        return "INVALID", "; ".join(str(p) for p in exc.problems)
    return "VALID", f"{found.kind}: {found.nodes} nodes, {found.workflows} workflows"


def test_every_difference_from_tosca_parser_is_listed_with_its_rule():
    oracle = _oracle()
    table = _table()
    assert all(row["rule"].strip() for row in table.values()), "every listed difference needs its rule"
    assert set(table) <= set(oracle), f"listed but not in the corpus: {sorted(set(table) - set(oracle))}"
    unlisted, stale, crashed = [], [], []
    for name, expected in sorted(oracle.items()):
        try:
            verdict, said = orch_verdict(SAMPLES / name)
        except Exception as exc:  # noqa: BLE001 - a traceback on any file is the failure reported
            crashed.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        listed = table.get(name)
        if verdict != expected and (listed is None or listed["orch"] != verdict):
            unlisted.append(f"{name}: tosca-parser {expected}, orch {verdict}: {said[:300]}")
        elif verdict == expected and listed is not None:
            stale.append(f"{name}: orch now agrees ({verdict}); remove it from the table")
    assert not crashed, "orch raised on:\n" + "\n".join(crashed)
    assert not unlisted, "differences not in corpus_differences.tsv:\n" + "\n".join(unlisted)
    assert not stale, "\n".join(stale)


def test_the_table_holds_only_differences_with_the_oracle():
    oracle = _oracle()
    for name, row in _table().items():
        assert row["toscaparser"] == oracle.get(name), \
            f"{name}: the table's tosca-parser verdict is not ORACLE.tsv's"
        assert row["orch"] != row["toscaparser"], f"{name}: a row that is no difference"
