"""The playbook layer's plug points, run for real with Ansible on this machine (no orch around them, so that
values TOSCA would refuse at validate time reach the playbooks): an unknown launcher or mover fails with a
message naming the node, it and the known ones, before anything is done; a scheduler added as a folder (plus
one mapping entry) is used without an edit of Slurm's files; enqueue_compss submits by its own line and its
job is then watched and cancelled as Slurm's; the exact sbatch command of both job types. Batch commands are
stand-ins on PATH that record how they were called. The static checks are in tests/unit/test_job_plugs.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
LAUNCHERS_KNOWN = "(known: enqueue_compss, local, sbatch)"


class _Unsafe(str):
    """Strings given as orch gives operation inputs: data Ansible must not template."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def _unsafe(value: Any) -> Any:
    if isinstance(value, str) and value:
        return _Unsafe(value)
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


@dataclass
class Outcome:
    rc: int
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # the names of the tasks that ran (ok or changed)


def play(playbook: Path, tmp_path: Path, bin_dir: Path | None = None, **variables: Any) -> Outcome:
    """Run `playbook` on this machine as one host with `variables` (as orch's inventory gives them)."""
    run_dir = Path(tmp_path) / f"run-{len(list(Path(tmp_path).glob('run-*')))}"
    run_dir.mkdir()
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "NODE": "job",
            **_unsafe(variables)}
    inventory = run_dir / "inventory.yaml"
    inventory.write_text(yaml.dump({"all": {"hosts": {"op_job": host}}}, Dumper=_Dumper))
    path = os.pathsep.join([str(bin_dir)] if bin_dir else []) + os.pathsep + os.path.dirname(sys.executable)
    outcome = Outcome(rc=-1)

    def on_event(event: dict) -> bool:
        data = event.get("event_data", {})
        result = data.get("res") or {}
        if event.get("event") == "runner_on_ok":
            outcome.facts.update(result.get("ansible_facts") or {})
            outcome.tasks.append(data.get("task", ""))
        elif event.get("event") == "runner_on_failed":
            outcome.failures.append(str(result.get("msg", "")))
        return False

    runner = ansible_runner.run(
        private_data_dir=str(run_dir), playbook=str(playbook), inventory=str(inventory), quiet=True,
        suppress_env_files=True, event_handler=on_event, settings={"suppress_ansible_output": True},
        envvars={"PATH": path + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
                 "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_NOCOLOR": "True", "ANSIBLE_GATHERING": "explicit"})
    outcome.rc = runner.rc
    return outcome


def stand_ins(tmp_path: Path, scripts: dict[str, str]) -> Path:
    """A folder of commands for PATH; each records its arguments, one a line, in <name>.args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{bin_dir}/{name}.args"\n{body}\n')
        script.chmod(0o755)
    return bin_dir


def args_of(bin_dir: Path, name: str) -> list[str]:
    return (bin_dir / f"{name}.args").read_text().splitlines()


def job_inputs(launcher: str, work_dir: Path, **more: Any) -> dict[str, Any]:
    """The inputs eflows.nodes.PyCOMPSsJob gives its job operations."""
    return {"launcher": launcher, "command": "app/w.py", "arguments": ["${n}", "a b"], "ORCH_INPUTS": {"n": 3},
            "image_path": "/img", "python": "/venv/bin/python", "num_nodes": 2, "qos": "debug",
            "compss_options": [], "modules": [], "work_dir": str(work_dir), **more}


def test_an_unknown_launcher_fails_naming_it_and_the_known_ones(tmp_path):
    work_dir = tmp_path / "jobs"
    message = f'job: unknown launcher "qsub" {LAUNCHERS_KNOWN}'
    for name in ("job_submit.yaml", "job_run.yaml", "job_cancel.yaml"):
        outcome = play(PLAYBOOKS / "eflows" / name, tmp_path, **job_inputs("qsub", work_dir), TOSCA_JOB_ID="7")
        assert outcome.rc != 0 and outcome.failures == [message], (name, outcome)
        assert outcome.tasks == [] and "launch_command" not in outcome.facts, name
    assert not work_dir.exists()  # nothing was submitted


def test_an_unknown_mover_fails_naming_it_and_the_known_ones(tmp_path):
    deployment = tmp_path / "deployment"
    record = deployment / "moved" / "move.jsonl"
    record.parent.mkdir(parents=True)
    record.write_text('{"host": "", "path": "%s"}\n' % (tmp_path / "kept"))
    (tmp_path / "kept").mkdir()
    (tmp_path / "source").mkdir()
    inputs = {"NODE": "move", "mover": "ftp", "source": str(tmp_path / "source"),
              "target": str(tmp_path / "target"), "DEPLOYMENT_DIR": str(deployment), "ORCH_HOSTS": {},
              "TOSCA_JOB_ID": "move-1"}
    for name in ("data_move.yaml", "data_done.yaml", "data_remove.yaml", "data_cancel.yaml"):
        outcome = play(PLAYBOOKS / "eflows" / name, tmp_path, **inputs)
        assert outcome.rc != 0 and outcome.failures == ['move: unknown mover "ftp" (known: airflow, ansible)'], name
        assert "TOSCA_JOB_STATUS" not in outcome.facts, name
    assert not (tmp_path / "target").exists() and (tmp_path / "kept").is_dir() and record.is_file()


def test_the_embedded_mover_is_the_ansible_folder(tmp_path):
    """The dispatch reaches movers/ansible/: a move, its state, and the removal of what it moved."""
    (tmp_path / "source" / "sub").mkdir(parents=True)
    (tmp_path / "source" / "sub" / "f.txt").write_text("data\n")
    deployment = tmp_path / "deployment"
    inputs = {"NODE": "move", "mover": "ansible", "source": str(tmp_path / "source"),
              "target": str(tmp_path / "out" / "target"), "DEPLOYMENT_DIR": str(deployment), "ORCH_HOSTS": {}}
    moved = play(PLAYBOOKS / "eflows" / "data_move.yaml", tmp_path, **inputs)
    assert moved.rc == 0, moved
    assert (tmp_path / "out" / "target" / "sub" / "f.txt").read_text() == "data\n"
    assert moved.facts["files"] in (1, "1") and moved.facts["target_path"] == str(tmp_path / "out" / "target")
    done = play(PLAYBOOKS / "eflows" / "data_done.yaml", tmp_path, **inputs, TOSCA_JOB_ID=moved.facts["TOSCA_JOB_ID"])
    assert done.facts == {"TOSCA_JOB_STATUS": "COMPLETED", "TOSCA_JOB_ID": moved.facts["TOSCA_JOB_ID"]}
    removed = play(PLAYBOOKS / "eflows" / "data_remove.yaml", tmp_path, **inputs)
    assert removed.rc == 0, removed
    assert not (tmp_path / "out" / "target").exists() and (tmp_path / "source" / "sub" / "f.txt").is_file()
    assert not (deployment / "moved" / "move.jsonl").exists()


PBS = {  # a scheduler as a folder: what a PBS one would hold, its commands replaced by records of the contract
    "submit.yaml": """
- name: qsub
  ansible.builtin.copy:
    dest: "{{ work_dir }}/qsub"
    content: "{{ {'script': job_script, 'name': job_name, 'nodes': job_nodes, 'qos': job_qos} | to_json }}"
- name: Report the job
  ansible.builtin.set_fact:
    { TOSCA_JOB_ID: "123.pbs", job_output_file: "{{ work_dir }}/o", job_error_file: "{{ work_dir }}/e" }
""",
    "state.yaml": """
- name: qstat
  ansible.builtin.set_fact: { TOSCA_JOB_ID: "{{ TOSCA_JOB_ID }}", TOSCA_JOB_STATUS: RUNNING, TOSCA_JOB_ERROR: "" }
""",
    "cancel.yaml": """
- name: qdel
  ansible.builtin.file: { path: "{{ work_dir }}/qdel-{{ TOSCA_JOB_ID }}", state: touch, mode: "0644" }
""",
}


def test_a_scheduler_is_a_new_folder_and_one_mapping_entry(tmp_path):
    playbooks = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, playbooks)
    slurm_before = {p.name: p.read_bytes() for p in (playbooks / "jobs" / "schedulers" / "slurm").iterdir()}
    launchers = playbooks / "eflows" / "launchers.yaml"
    mapping = yaml.safe_load(launchers.read_text())
    mapping["job_launchers"]["qsub"] = {"scheduler": "pbs"}
    launchers.write_text(yaml.safe_dump(mapping))
    work_dir = tmp_path / "jobs"
    work_dir.mkdir()
    inputs = job_inputs("qsub", work_dir, TOSCA_JOB_ID="123.pbs")

    # the entry alone: its scheduler is not there yet
    outcome = play(playbooks / "eflows" / "job_run.yaml", tmp_path, **inputs)
    assert outcome.failures == [
        "job: launcher qsub needs scheduler pbs, which orch does not have (known: local, slurm)"]

    pbs = playbooks / "jobs" / "schedulers" / "pbs"
    pbs.mkdir()
    for name, text in PBS.items():
        (pbs / name).write_text(text)
    submitted = play(playbooks / "eflows" / "job_submit.yaml", tmp_path, **inputs)
    assert submitted.rc == 0, submitted
    assert submitted.facts["TOSCA_JOB_ID"] == "123.pbs" and submitted.facts["job_output_file"] == f"{work_dir}/o"
    qsub = yaml.safe_load((work_dir / "qsub").read_text())
    assert qsub == {"script": "PYTHONPATH=/img/site-packages /venv/bin/python /img/app/w.py 3 'a b'",
                    "name": "job", "nodes": 2, "qos": "debug"}
    state = play(playbooks / "eflows" / "job_run.yaml", tmp_path, **inputs)
    assert (state.facts["TOSCA_JOB_STATUS"], state.facts["TOSCA_JOB_ID"]) == ("RUNNING", "123.pbs")
    assert play(playbooks / "eflows" / "job_cancel.yaml", tmp_path, **inputs).rc == 0
    assert (work_dir / "qdel-123.pbs").is_file()
    assert {p.name: p.read_bytes() for p in (playbooks / "jobs" / "schedulers" / "slurm").iterdir()} == slurm_before


SLURM = {
    "squeue": "exit 0",  # the job has left the queue
    "scontrol": 'echo "JobId=4242 JobName=job JobState=COMPLETED Reason=None ExitCode=0:0 StdErr=/nowhere/err"',
    "scancel": "exit 0",
}


def test_enqueue_compss_submits_by_its_line_and_slurm_watches_and_cancels_it(tmp_path):
    bin_dir = stand_ins(tmp_path, {"enqueue_compss": 'pwd > "$0.cwd"; echo "Submitted batch job 4242"', **SLURM})
    work_dir = tmp_path / "jobs"
    inputs = job_inputs("enqueue_compss", work_dir, compss_options=["--exec_time=30"])
    submitted = play(PLAYBOOKS / "eflows" / "job_submit.yaml", tmp_path, bin_dir, **inputs)
    assert submitted.rc == 0, submitted
    assert submitted.facts["TOSCA_JOB_ID"] == "4242"
    assert submitted.facts["job_output_file"] == f"{work_dir}/compss-4242.out"
    assert submitted.facts["job_error_file"] == f"{work_dir}/compss-4242.err"
    assert args_of(bin_dir, "enqueue_compss") == ["--num_nodes=2", "--qos=debug", "--pythonpath=/img/site-packages",
                                                  "--exec_time=30", "--lang=python", "/img/app/w.py", "3", "a b"]
    assert (bin_dir / "enqueue_compss.cwd").read_text().strip() == str(work_dir)
    assert not (bin_dir / "sbatch.args").exists()

    state = play(PLAYBOOKS / "eflows" / "job_run.yaml", tmp_path, bin_dir, **inputs, TOSCA_JOB_ID="4242")
    assert (state.facts["TOSCA_JOB_STATUS"], state.facts["TOSCA_JOB_ERROR"]) == ("COMPLETED", "")
    assert args_of(bin_dir, "scontrol") == ["show", "job", "4242"]
    assert play(PLAYBOOKS / "eflows" / "job_cancel.yaml", tmp_path, bin_dir, **inputs, TOSCA_JOB_ID="4242").rc == 0
    assert args_of(bin_dir, "scancel") == ["4242"]


def sbatch_call(bin_dir: Path, folder: str) -> list[str]:
    return [arg.replace(folder, "D") for arg in args_of(bin_dir, "sbatch")]


def test_the_sbatch_command_of_both_job_types(tmp_path):
    """The eFlows job's num_nodes and qos become --nodes/--qos; orch.nodes.SlurmJob's sbatch_options go as
    they are; both from a fresh folder of the node's under work_dir."""
    bin_dir = stand_ins(tmp_path, {"sbatch": 'echo "77;cluster"', **SLURM})
    work_dir = tmp_path / "jobs"
    eflows = play(PLAYBOOKS / "eflows" / "job_submit.yaml", tmp_path, bin_dir, **job_inputs("sbatch", work_dir))
    assert eflows.rc == 0, eflows
    (folder,) = [str(p) for p in work_dir.glob("job-*")]
    assert sbatch_call(bin_dir, folder) == ["--parsable", "--job-name=job", "--chdir=D", "--output=D/slurm-%j.out",
                                            "--error=D/slurm-%j.err", "--nodes=2", "--qos=debug", "D/job.sh"]
    assert (Path(folder) / "job.sh").read_text() == (
        "#!/bin/bash\nPYTHONPATH=/img/site-packages /venv/bin/python /img/app/w.py 3 'a b'\n")
    assert eflows.facts["TOSCA_JOB_ID"] == "77" and eflows.facts["job_output_file"] == f"{folder}/slurm-77.out"

    shutil.rmtree(work_dir)
    own = play(PLAYBOOKS / "jobs" / "slurm_submit.yaml", tmp_path, bin_dir, NODE="job", command="echo hi",
               work_dir=str(work_dir), sbatch_options=["--time=00:01:00"], job_name="orch-job")
    assert own.rc == 0, own
    (folder,) = [str(p) for p in work_dir.glob("job-*")]
    assert sbatch_call(bin_dir, folder) == ["--parsable", "--job-name=orch-job", "--chdir=D", "--output=D/slurm-%j.out",
                                            "--error=D/slurm-%j.err", "--time=00:01:00", "D/job.sh"]
    assert own.facts["TOSCA_JOB_ID"] == "77"


def test_validate_refuses_a_launcher_the_types_do_not_list(tmp_path):
    """Before any playbook: the valid values of `launcher` (the same as the mapping's, tests/unit) refuse it."""
    topology = yaml.safe_load((ROOT / "tests" / "integration" / "data" / "data_mover.yaml").read_text())
    topology["imports"] = [str(ROOT / "tosca_types" / "eflows4hpc.yaml")]
    topology["topology_template"]["node_templates"]["environment"]["properties"]["launcher"] = "qsub"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(topology))
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(tmp_path / "home"), "validate",
                             str(path)], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert result.returncode == 2, result
    assert "node_templates.environment.properties.launcher" in result.stdout + result.stderr
