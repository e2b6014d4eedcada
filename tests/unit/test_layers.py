"""Importing the engine, the plan, the executors or the store never imports the TOSCA loader or
tosca-parser: run-time evaluation lives in orchestrator/engine/evaluate.py, the function grammar
they share in orchestrator/functions.py. Checked in a fresh interpreter (this one has imported
everything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOWER_LAYERS = ["orchestrator.engine.scheduler", "orchestrator.engine.operations", "orchestrator.engine.evaluate",
                "orchestrator.plan.lifecycle", "orchestrator.plan.workflows", "orchestrator.plan.view",
                "orchestrator.render",
                "orchestrator.executors.ansible", "orchestrator.store.sqlite", "orchestrator.credentials.reader",
                "orchestrator.engine.jobs", "orchestrator.executors.base", "orchestrator.store.base"]


def test_engine_plan_executors_and_store_import_no_tosca_parser():
    probe = ("import sys\n" + "".join(f"import {m}\n" for m in LOWER_LAYERS)
             + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'toscaparser'"
               " or m.startswith('orchestrator.tosca')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported by the lower layers: {result.stdout}"


def test_the_cli_and_the_api_load_tosca_parser_only_when_a_command_loads_a_topology():
    """`orch --version`, `orch list`, `orch credentials ...` never pay for tosca-parser's imports."""
    probe = ("import sys\nimport orchestrator.cli\nimport orchestrator.api\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'toscaparser'"
             " or m == 'orchestrator.tosca.loader'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported at start-up: {result.stdout}"


def test_undeploy_and_status_of_an_unchanged_deployment_import_no_tosca_parser(tmp_path):
    """What load produced is kept with the deployment (topology.cache): a later command that only needs the
    topology uses it, and never imports tosca-parser. The deployment is recorded here (its nodes never
    created, so undeploy runs no operation: the probe's executor refuses any)."""
    from orchestrator.api import Orchestrator
    from orchestrator.store.base import DeploymentStatus

    template, inputs = str(ROOT / "topologies" / "hello.yaml"), {"workdir": str(tmp_path / "work")}
    with Orchestrator(tmp_path) as api:
        topology = api._load_for_deployment("kept", template, inputs, False)
        api.store.create_or_update_deployment("kept", template, topology.template_file, inputs,
                                              DeploymentStatus.DEPLOYED)
    assert (tmp_path / "deployments" / "kept" / "topology.cache").is_file()
    probe = ("import sys\nfrom pathlib import Path\nfrom orchestrator.api import Orchestrator\n"
             "class Refusing:\n"
             "    def run_batch(self, *args, **kwargs):\n        raise AssertionError('no operation expected')\n"
             f"api = Orchestrator(Path({str(tmp_path)!r}), executor=Refusing())\n"
             "api.status('kept')\n"
             "assert api.undeploy('kept').outcome.ok\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'toscaparser'"
             " or m == 'orchestrator.tosca.loader'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported by undeploy of an unchanged deployment: {result.stdout}"


def test_the_import_linter_contracts_of_pyproject_hold():
    """The layers of pyproject.toml's [tool.importlinter] (cli → api → loader | plan | engine → executors |
    store, and the forbidden imports beside them), checked on the source as it is."""
    linter = Path(sys.executable).with_name("lint-imports")
    assert linter.exists(), "import-linter is not installed (pip install -e '.[test]')"
    result = subprocess.run([str(linter), "--no-cache"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
