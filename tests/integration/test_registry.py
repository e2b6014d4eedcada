"""The workflow registry through the CLI, on localhost: a folder registry and a git repository made here
with two commits (file:// URL, never the network) are listed with their versions; a deploy copies the
registry at the revision asked into the deployment's own folder (relative playbooks and a shared type file
beside the workflows resolve there), takes the workflow's site file unless -i is given, and is not touched
by later changes to the registry; unknown workflows and revisions, a revision that looks like an option
and a missing folder are refused with exit 2, naming them, and leave nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "registry"
COMMITTER = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "dev",
             "GIT_AUTHOR_EMAIL": "dev@localhost", "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@localhost"}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, **COMMITTER})
    return done.stdout.strip()


def registry_folder(path: Path, site_out: Path) -> Path:
    """The test registry's workflow 'greet' (and its shared types), its site file pointing at site_out."""
    shutil.copytree(DATA, path)
    (path / "greet" / "site.yaml").write_text(f"out_dir: {site_out}\n")
    site_out.mkdir(parents=True, exist_ok=True)
    return path


def set_message(registry: Path, message: str) -> None:
    topology = registry / "greet" / "topology.yaml"
    text = topology.read_text()
    old = text.split("message: ", 2)[1].split(" }", 1)[0]
    topology.write_text(text.replace(f"message: {old} }}", f"message: {message} }}"))


def listed(home: Path) -> dict:
    result = orch(home, "registry", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}


def refused(result: subprocess.CompletedProcess, *named: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr, result.stderr


def test_a_folder_registry_is_listed_and_its_workflow_deployed_from_a_copy_with_its_site_file(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    registry = registry_folder(tmp_path / "workflows", out)
    added = orch(home, "registry", "add", str(registry))
    assert added.returncode == 0, added.stderr
    assert "registry workflows: folder" in added.stdout and "greet" in added.stdout

    (entry,) = listed(home).values()
    assert (entry["name"], entry["kind"], entry["source"], entry["problem"]) == (
        "workflows", "folder", str(registry), None)
    (workflow,) = entry["workflows"]  # common/ holds no topology: it is no workflow
    assert workflow == {"name": "greet", "description": "Greets (the registry test's workflow)",
                        "topology": "topology.yaml", "site": "site.yaml", "problem": None,
                        "versions": [{"revision": "working tree", "committed": None, "subject": ""}]}
    text = orch(home, "registry", "list")
    assert "greet: Greets" in text.stdout and "working tree" in text.stdout

    deployed = orch(home, "deploy", "--from-registry", "greet")  # name: the workflow's; inputs: its site file
    assert deployed.returncode == 0, deployed.stderr
    assert "workflows/greet at working tree (inputs from its site.yaml)" in deployed.stderr
    assert (out / "greeting.txt").read_text() == "first\n"
    status = json.loads(orch(home, "status", "greet", "--json").stdout)
    copies = home.resolve() / "deployments" / "greet" / "registry"
    (copy,) = copies.iterdir()
    assert status["status"] == "deployed" and status["topology"] == str(copy / "greet" / "topology.yaml")
    assert (copy / "common" / "greeting-types.yaml").is_file()  # the whole registry: shared files resolve

    set_message(registry, "changed later")  # the registry changes; the deployment keeps what it was made of
    assert "message: first }" in (copy / "greet" / "topology.yaml").read_text()
    again = orch(home, "deploy", "--from-registry", "greet")  # a deploy again reads the registry anew
    assert again.returncode == 0, again.stderr
    assert (out / "greeting.txt").read_text() == "changed later\n"
    (newer,) = copies.iterdir()  # the copy no longer used is gone
    assert newer != copy and json.loads(orch(home, "status", "greet", "--json").stdout)["topology"] == str(
        newer / "greet" / "topology.yaml")

    undeployed = orch(home, "undeploy", "greet")
    assert undeployed.returncode == 0, undeployed.stderr
    assert not copies.exists()
    assert listed(home)["workflows"]["workflows"][0]["name"] == "greet"  # the registry stays registered


def test_a_git_registry_lists_its_commits_and_deploys_each_revision(tmp_path):
    home, default_out, old_out, new_out = (tmp_path / n for n in ("home", "default", "old", "new"))
    repo = registry_folder(tmp_path / "repo", default_out)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "greet: first")
    first = git(repo, "rev-parse", "HEAD")
    set_message(repo, "second")
    git(repo, "commit", "-q", "-a", "-m", "greet: second")
    second = git(repo, "rev-parse", "HEAD")
    set_message(repo, "not committed")  # a deploy takes commits, never the work tree's changes

    added = orch(home, "registry", "add", f"file://{repo}", "--name", "lab")
    assert added.returncode == 0, added.stderr
    lab = listed(home)["lab"]
    assert (lab["kind"], lab["source"]) == ("git", str(repo))
    (workflow,) = lab["workflows"]
    assert [(v["revision"], v["subject"]) for v in workflow["versions"]] == [
        (second, "greet: second"), (first, "greet: first")]
    assert all(isinstance(v["committed"], float) for v in workflow["versions"])
    assert first[:12] in orch(home, "registry", "list").stdout

    for out in (old_out, new_out):
        out.mkdir()
    site = tmp_path / "site.yaml"
    site.write_text(f"out_dir: {old_out}\n")
    old = orch(home, "deploy", "--from-registry", "lab/greet", "--version", first[:10], "-n", "old", "-i", str(site))
    assert old.returncode == 0, old.stderr
    assert f"lab/greet at {first}" in old.stderr and "inputs from" not in old.stderr
    assert (old_out / "greeting.txt").read_text() == "first\n"

    new = orch(home, "deploy", "--from-registry", "greet", "-n", "new", "--set", f"out_dir={new_out}")
    assert new.returncode == 0, new.stderr
    assert (new_out / "greeting.txt").read_text() == "second\n"
    assert not (default_out / "greeting.txt").exists()  # --set went on top of the site file's out_dir

    for name, commit in (("old", first), ("new", second)):
        (copy,) = (home / "deployments" / name / "registry").iterdir()
        assert copy.name.startswith(f"greet-{commit[:12]}-")
        assert not (copy / ".git").exists()
    assert git(repo, "worktree", "list").count("\n") == 0  # the repository was only read
    assert git(repo, "status", "--porcelain") == "M greet/topology.yaml"


def test_refused_names_revisions_and_folders_name_what_is_wrong_and_leave_nothing(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    repo = registry_folder(tmp_path / "repo", out)
    broken = repo / "broken"
    broken.mkdir()
    (broken / "workflow.yaml").write_text("topology: ../greet/topology.yaml\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    assert orch(home, "registry", "add", str(repo), "--name", "lab").returncode == 0

    refused(orch(home, "registry", "add", str(tmp_path / "nowhere")), str(tmp_path / "nowhere"), "no such folder")
    refused(orch(home, "registry", "add", "ssh://git.invalid/registry.git"), "only a local folder")
    refused(orch(home, "registry", "add", str(repo), "--name", "lab"), "a registry named 'lab' exists")
    refused(orch(home, "registry", "add", str(repo), "--name", "../lab"), "'../lab' cannot name a registry")

    refused(orch(home, "deploy", "--from-registry", "nothing", "-n", "x"), "no workflow named 'nothing'")
    refused(orch(home, "deploy", "--from-registry", "elsewhere/greet", "-n", "x"), "no registry named 'elsewhere'")
    refused(orch(home, "deploy", "--from-registry", "greet", "--version", "v9.9", "-n", "x"),
            "registry 'lab' has no revision 'v9.9'")
    marker = tmp_path / "written-by-git"
    for option in (f"--output={marker}", "-h", "--all"):
        refused(orch(home, "deploy", "--from-registry", "greet", f"--version={option}", "-n", "x"),
                f"'{option}' is not a revision")
    assert not marker.exists()
    (problem,) = [w["problem"] for w in listed(home)["lab"]["workflows"] if w["name"] == "broken"]
    assert "broken/workflow.yaml: topology: '../greet/topology.yaml' must be a relative path inside" in problem
    refused(orch(home, "deploy", "--from-registry", "broken", "-n", "x"), "workflow 'broken'", "relative path inside")
    refused(orch(home, "deploy", "--from-registry", "greet", "topologies/hello.yaml"), "--from-registry")
    refused(orch(home, "deploy", "topologies/hello.yaml", "--version", "HEAD"), "--version goes with --from-registry")

    folder = registry_folder(tmp_path / "plain", out)
    assert orch(home, "registry", "add", str(folder)).returncode == 0
    refused(orch(home, "deploy", "--from-registry", "greet", "-n", "x"), "in several registries (lab, plain)")
    refused(orch(home, "deploy", "--from-registry", "plain/greet", "--version", "HEAD", "-n", "x"),
            "registry 'plain' is a folder", "no version 'HEAD'")

    assert json.loads(orch(home, "list", "--json").stdout) == []
    assert not (home / "deployments").exists() or not any((home / "deployments").iterdir())

    assert orch(home, "registry", "remove", "plain").returncode == 0
    refused(orch(home, "registry", "remove", "plain"), "no registry named 'plain'", "known: lab")
    shutil.rmtree(repo)
    gone = listed(home)["lab"]
    assert gone["workflows"] == [] and "is gone" in gone["problem"]
    refused(orch(home, "deploy", "--from-registry", "lab/greet", "-n", "x"), "registry 'lab'", "is gone")
