"""The bad-input corpus (tests/corpus/) through the real CLI, in subprocesses.

Each case must make `orch validate` exit 2, print the expected problem and no traceback; the cases
marked `deploy` are also deployed, which must fail the same way and leave nothing in the store.
The runs of the selected cases are started together when the first case runs, and each test waits for
its own. Each run is `python -m orchestrator.cli ...` in a child forked from one process that has imported
orch already (a CLI start is mostly its imports: a second of CPU each), see CliServer;
ORCH_CORPUS_SUBPROCESS=1 starts a fresh interpreter per run instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
HELLO = "topologies/hello.yaml"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
IMPORTED = CORPUS / "imported"  # not cases: the type files that the import cases import
NOT_CASES = {"expected.yaml", "make_csars.py", "cli_server.py", "__pycache__", IMPORTED.name}
TIMEOUT = 120


def _make_csars():
    spec = importlib.util.spec_from_file_location("orch_corpus_make_csars", CORPUS / "make_csars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_csars = _make_csars()


def _params(names, bug_key="bug"):
    params = []
    for name in names:
        bug = EXPECTED[name].get("bug") or EXPECTED[name].get(bug_key)
        marks = [pytest.mark.xfail(strict=True, reason=f"bug: {bug}")] if bug else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


CASES = _params(sorted(EXPECTED))
DEPLOY_CASES = _params(sorted(name for name, spec in EXPECTED.items() if spec.get("deploy")), "deploy_bug")


# -- running the CLI ---------------------------------------------------------------------------------


# Read once, at import: the cases run on a thread pool, and iterating os.environ there races with pytest,
# which sets and deletes PYTEST_CURRENT_TEST in the main thread (KeyError mid-iteration).
_CLI_ENV = {k: v for k, v in os.environ.items() if k not in ("ORCH_DEBUG", "ORCH_HOME", "PYTEST_CURRENT_TEST")}
_CLI_ENV.update(COLUMNS="500", NO_COLOR="1")


def _cli_env() -> dict[str, str]:
    return dict(_CLI_ENV)


class CliServer:
    """`python -m orchestrator.cli` run in children forked from one process that imported orch once
    (tests/corpus/cli_server.py): most of a CLI start is its imports, and a hundred of them add up to minutes
    on a busy machine. Set ORCH_CORPUS_SUBPROCESS=1 to start a fresh interpreter for each instead."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        env = {**_cli_env(), "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, str(CORPUS / "cli_server.py")], cwd=REPO, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        self.results: dict[str, Future] = {}
        self.count = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            reply = json.loads(line)
            self.results[reply["id"]].set_result(reply["rc"])
        for future in self.results.values():  # the server died: no one waits forever
            if not future.done():
                future.set_exception(RuntimeError("the CLI server exited"))

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        with self.lock:
            self.count += 1
            ident = str(self.count)
            future = self.results[ident] = Future()
            out, err = self.scratch / f"{ident}.out", self.scratch / f"{ident}.err"
            request = {"id": ident, "args": args, "cwd": str(REPO), "env": _cli_env(), "stdout": str(out),
                       "stderr": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        rc = future.result(timeout=TIMEOUT)
        return subprocess.CompletedProcess(["orch", *args], rc, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=TIMEOUT)


_server: CliServer | None = None


def orch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["--home", str(home), *args]
    if _server is not None:
        return _server.run(argv)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv],
                          cwd=REPO, env=_cli_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)


def command_args(name: str, path: Path) -> list[str]:
    return [HELLO, "-i", str(path)] if EXPECTED[name].get("inputs") else [str(path)]


class Runs:
    """Starts every selected case's subprocesses at once, on a small pool; results by case."""

    def __init__(self, tmp_factory: pytest.TempPathFactory, validate: set[str], deploy: set[str]):
        generated = sorted(n for n in validate | deploy if EXPECTED[n].get("generated"))
        built = make_csars.build(tmp_factory.mktemp("generated"), generated) if generated else {}
        self.paths = {name: built.get(name, CORPUS / name) for name in validate | deploy}
        self.homes: dict[tuple[str, str], Path] = {}
        self.pool = ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1)
        self.validations: dict[str, Future] = {}
        self.deploys: dict[str, Future] = {}
        for name in sorted(deploy):  # the longer jobs first
            home = self.homes[(name, "deploy")] = tmp_factory.mktemp("home-deploy")
            self.deploys[name] = self.pool.submit(self._deploy, name, home)
        for name in sorted(validate):
            home = self.homes[(name, "validate")] = tmp_factory.mktemp("home-validate")
            self.validations[name] = self.pool.submit(orch, home, "validate",
                                                      *command_args(name, self.paths[name]))

    def _deploy(self, name: str, home: Path):
        # should an inputs case ever deploy hello.yaml after all, its files stay in the test's folder
        contain = ["--set", f"workdir={home / 'hello'}"] if EXPECTED[name].get("inputs") else []
        deployed = orch(home, "deploy", "--name", "corpus-case", *command_args(name, self.paths[name]),
                        *contain)
        listed = orch(home, "list", "--json") if (home / "orch.db").exists() else None
        return deployed, listed

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for name, path in self.paths.items():  # pytest keeps recent tmp folders: not 50 MB of them
            if EXPECTED[name].get("generated") and path.stat().st_size > 1024 * 1024:
                path.unlink()


def _selected(session: pytest.Session, test_name: str) -> set[str]:
    return {item.callspec.params["name"] for item in session.items
            if getattr(item, "originalname", None) == test_name and item.module.__name__ == __name__}


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    global _server
    if not os.environ.get("ORCH_CORPUS_SUBPROCESS"):
        _server = CliServer(tmp_path_factory.mktemp("cli-output"))
    try:
        runner = Runs(tmp_path_factory, _selected(request.session, "test_validate_case"),
                      _selected(request.session, "test_deploy_case"))
        yield runner
        runner.close()
    finally:
        if _server is not None:
            _server.close()
            _server = None


# -- assertions ----------------------------------------------------------------------------------------


def assert_reported(name: str, result: subprocess.CompletedProcess[str], path: Path) -> None:
    output = result.stdout + result.stderr
    spec = EXPECTED[name]
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    assert result.returncode == 2, f"exit {result.returncode}:\n{output}"
    file = spec.get("file") or path.name
    place = spec.get("place")
    lines = [line for line in result.stderr.splitlines() if spec["message"] in line]
    assert lines, f"no problem mentions {spec['message']!r}:\n{output}"
    assert any(file in line and (place is None or place in line) for line in lines), \
        f"no problem in {file!r} at {place!r} says {spec['message']!r}:\n{output}"
    assert any(line.endswith(("problem:", "problems:")) for line in result.stderr.splitlines())


# -- tests -----------------------------------------------------------------------------------------------


def test_corpus_is_complete():
    on_disk = {p.name for p in CORPUS.iterdir() if p.name not in NOT_CASES}
    generated = {name for name, spec in EXPECTED.items() if spec.get("generated")}
    assert on_disk == set(EXPECTED) - generated, "every corpus file needs an entry in expected.yaml and back"
    assert generated == set(make_csars.CASES), "generated cases and make_csars.CASES disagree"
    assert len([n for n, spec in EXPECTED.items() if not spec.get("bug")]) >= 80
    for name, spec in EXPECTED.items():
        assert set(spec) <= {"place", "message", "file", "inputs", "generated", "deploy", "bug",
                             "deploy_bug", "validate_says"}, name
        assert isinstance(spec.get("message"), str) and spec["message"], name
        assert spec.get("place") is None or isinstance(spec["place"], str), name
    committed_archives = [p for p in CORPUS.iterdir() if p.suffix in (".zip", ".csar")]
    assert not committed_archives, "CSARs are built, not committed"
    assert all(p.stat().st_size < 1024 * 1024 for p in CORPUS.iterdir() if p.is_file())
    importers = [p for p in [*CORPUS.iterdir(), *IMPORTED.iterdir()] if p.suffix == ".yaml"]
    for imported in IMPORTED.iterdir():
        assert any(imported.name in p.read_text(encoding="utf-8") for p in importers if p != imported), \
            f"{imported.name} is imported by no case"


@pytest.mark.parametrize("name", CASES)
def test_validate_case(runs, name):
    result = runs.validations[name].result()
    says = EXPECTED[name].get("validate_says")
    if says:
        # valid as a template (a type library; inputs deploy will need), yet refused by deploy
        assert result.returncode == 0, result.stdout + result.stderr
        assert says in result.stdout, result.stdout
        assert EXPECTED[name].get("deploy"), "a case valid for validate must say what deploy refuses"
        return
    assert_reported(name, result, runs.paths[name])


@pytest.mark.parametrize("name", DEPLOY_CASES)
def test_deploy_case(runs, name):
    deployed, listed = runs.deploys[name].result()
    assert_reported(name, deployed, runs.paths[name])
    home = runs.homes[(name, "deploy")]
    if listed is not None:  # the store exists (opened before loading): it must hold no deployment
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
    assert not (home / "deployments").exists() or not any((home / "deployments").iterdir())


@pytest.mark.parametrize("bad_name, refusal", [
    ("zip_slip.csar", "zip slip"),  # refused for its members, before anything is unpacked
    ("missing_playbook.csar", "does not exist"),  # refused for its template, validated before the swap
])
def test_refused_csar_redeploy_keeps_the_deployed_files(tmp_path, bad_name, refusal):
    from orchestrator.api import Orchestrator
    from orchestrator.model import LoadError

    good = tmp_path / "good.csar"  # one node without operations: deploys without running anything
    template = (make_csars.HEADER
                + "topology_template:\n  node_templates:\n    thing:\n      type: tosca.nodes.Root\n")
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("main.yaml", template)
        archive.writestr("playbooks/keep.yaml", "- hosts: all\n  tasks: []\n")
    bad = make_csars.build(tmp_path, [bad_name])[bad_name]
    home = tmp_path / "home"
    orchestrator = Orchestrator(home, workers=1)
    try:
        assert orchestrator.deploy("app", str(good), {}).outcome.ok
        kept = home / "deployments" / "app" / "csar"
        assert (kept / "playbooks" / "keep.yaml").is_file() and (kept / "main.yaml").is_file()
        with pytest.raises(LoadError, match=refusal):
            orchestrator.deploy("app", str(bad), {})
        assert orchestrator.status("app").status == "deployed"
        assert (kept / "main.yaml").is_file(), "the deployed template is gone"
        assert (kept / "main.yaml").read_text(encoding="utf-8") == template, \
            "the deployed template was replaced"
        assert (kept / "playbooks" / "keep.yaml").is_file(), "the deployed playbooks are gone"
    finally:
        orchestrator.close()
