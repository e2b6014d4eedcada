"""`python -m orchestrator.catalogue register`: what the data playbooks call on the controller to record a
staged-out result (playbooks/eflows/data_move.yaml). Its values come as one JSON object on stdin, never
on the command line: {"catalogue", "deployment", "node", "target", "size", "checksum", "source", "title"}.
Prints {"id": ..., "record": {...}} on stdout; a problem is one line on stderr and exit code 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.catalogue.record import CatalogueError
from orchestrator.catalogue.resolve import register_result
from orchestrator.catalogue.yamlfile import YamlCatalogue

FIELDS = ("catalogue", "deployment", "node", "target", "size", "checksum")


def main(argv: list[str]) -> int:
    if argv != ["register"]:
        print("usage: python -m orchestrator.catalogue register < request.json", file=sys.stderr)
        return 2
    try:
        request = json.loads(sys.stdin.read())
        missing = [name for name in FIELDS if not isinstance(request, dict) or name not in request]
        if missing:
            raise CatalogueError(f"the request lacks {', '.join(missing)}")
        record = register_result(
            YamlCatalogue(Path(request["catalogue"])), deployment=str(request["deployment"]),
            node=str(request["node"]), target=str(request["target"]), size=int(request["size"]),
            checksum=str(request["checksum"]), source=str(request.get("source") or ""),
            title=str(request.get("title") or ""))
    except (CatalogueError, ValueError, TypeError) as exc:
        print(f"cannot register the result: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"id": record.id, "record": record.as_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
