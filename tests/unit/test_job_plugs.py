"""The plug points of the playbook layer agree with each other and with the TOSCA types: every scheduler folder
(playbooks/jobs/schedulers/) and every data mover folder (playbooks/eflows/movers/) has its three task files,
the launcher mapping (playbooks/eflows/launchers.yaml) names only schedulers that exist, and the valid values
of `launcher`, `scheduler` and `mover` in tosca_types/eflows4hpc.yaml are exactly what the playbooks know.
The playbooks themselves are run in tests/integration/test_plug_playbooks.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
SCHEDULERS = PLAYBOOKS / "jobs" / "schedulers"
MOVERS = PLAYBOOKS / "eflows" / "movers"
SCHEDULER_FILES = ("submit.yaml", "state.yaml", "cancel.yaml")
MOVER_FILES = ("move.yaml", "state.yaml", "remove.yaml")


def load(path: Path):
    return yaml.safe_load(path.read_text())


def folders(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir())


def eflows_types() -> dict:
    return load(ROOT / "tosca_types" / "eflows4hpc.yaml")["node_types"]


def valid_values(node_type: dict, name: str) -> list[str]:
    (constraint,) = node_type["properties"][name]["constraints"]
    return sorted(constraint["valid_values"])


def launchers() -> dict:
    return load(PLAYBOOKS / "eflows" / "launchers.yaml")["job_launchers"]


def includes(playbook: Path) -> list[str]:
    return [task["ansible.builtin.include_tasks"] for play in load(playbook) for task in play["tasks"]
            if "ansible.builtin.include_tasks" in task]


def assert_task_files(base: Path, names: tuple[str, ...]) -> None:
    for plug in folders(base):
        for name in names:
            path = base / plug / name
            assert path.is_file(), f"{path.relative_to(ROOT)} is missing: a plug-in folder holds {', '.join(names)}"
            tasks = load(path)
            # a task file (a list of tasks), to be included, not a playbook
            assert isinstance(tasks, list) and tasks, f"{path.relative_to(ROOT)}: not a list of tasks"
            assert all("hosts" not in task for task in tasks), f"{path.relative_to(ROOT)}: a playbook, not tasks"


def test_every_scheduler_folder_has_submit_state_and_cancel():
    assert {"local", "slurm"} <= set(folders(SCHEDULERS))
    assert_task_files(SCHEDULERS, SCHEDULER_FILES)


def test_every_mover_folder_has_move_state_and_remove():
    assert "ansible" in folders(MOVERS)
    assert_task_files(MOVERS, MOVER_FILES)


def test_the_launchers_are_the_valid_values_and_their_schedulers_exist():
    types = eflows_types()
    environment = types["eflows.nodes.Environment"]
    assert sorted(launchers()) == valid_values(environment, "launcher")
    for name, launcher in launchers().items():
        assert launcher["scheduler"] in folders(SCHEDULERS), f"launcher {name}: no scheduler {launcher['scheduler']}"
        if "submit" in launcher:
            assert (PLAYBOOKS / "eflows" / launcher["submit"]).is_file(), f"launcher {name}: {launcher['submit']}"
        assert launcher.get("line", "application") in ("application", "enqueue_compss")
    assert valid_values(environment, "scheduler") == folders(SCHEDULERS)
    for concrete in ("eflows.nodes.SlurmEnvironment", "eflows.nodes.LocalEnvironment"):
        # tosca-parser drops a parent's constraints where a type gives the property again (for its default)
        assert valid_values(types[concrete], "launcher") == sorted(launchers()), concrete
        assert valid_values(types[concrete], "scheduler") == folders(SCHEDULERS), concrete
        # their defaults are a launcher the mapping knows, on the scheduler they say
        properties = types[concrete]["properties"]
        assert launchers()[properties["launcher"]["default"]]["scheduler"] == properties["scheduler"]["default"]


def test_the_movers_are_the_valid_values_and_every_data_operation_is_given_the_mover():
    types = eflows_types()
    assert valid_values(types["eflows.nodes.DataPipeline"], "mover") == folders(MOVERS)
    operations = [types["eflows.nodes.DataPipeline"]["interfaces"]["Runnable"]["submit"],
                  types["eflows.nodes.DataPipeline"]["interfaces"]["Runnable"]["run"],
                  types["eflows.nodes.StageInData"]["interfaces"]["Standard"]["delete"]]
    for operation in operations:
        assert operation["inputs"]["mover"] == {"get_property": ["SELF", "mover"]}, operation


def test_orchs_own_job_playbooks_use_the_scheduler_files():
    """One implementation per scheduler: orch.nodes.LocalJob / SlurmJob include the same files as the eFlows
    jobs, and no other job task file is left beside them."""
    for scheduler in ("local", "slurm"):
        for playbook, action in (("submit", "submit"), ("run", "state"), ("cancel", "cancel")):
            path = PLAYBOOKS / "jobs" / f"{scheduler}_{playbook}.yaml"
            assert includes(path) == [f"schedulers/{scheduler}/{action}.yaml"], path
    assert not (PLAYBOOKS / "jobs" / "tasks").exists()


def test_the_eflows_job_playbooks_dispatch_through_the_launcher_mapping():
    eflows = PLAYBOOKS / "eflows"
    assert includes(eflows / "job_submit.yaml") == ["{{ job_submit_tasks }}"]
    assert includes(eflows / "job_run.yaml") == ["../jobs/schedulers/{{ job_scheduler }}/state.yaml"]
    assert includes(eflows / "job_cancel.yaml") == ["../jobs/schedulers/{{ job_scheduler }}/cancel.yaml"]
    for name in ("job_submit.yaml", "job_run.yaml", "job_cancel.yaml"):
        (play,) = load(eflows / name)
        assert play["vars_files"] == ["launchers.yaml"]
        assert "launcher ==" not in (eflows / name).read_text(), f"{name} branches on the launcher itself"
    for name, action in (("data_move.yaml", "move"), ("data_done.yaml", "state"), ("data_remove.yaml", "remove")):
        mover = f"movers/{{{{ mover_name }}}}/{action}.yaml"
        # data_move.yaml also includes, for catalogue data, the check against its record and the registration
        assert includes(eflows / name) == ([mover, "tasks/catalogue_after_move.yaml"] if action == "move" else [mover])


def test_a_launcher_on_its_schedulers_submit_has_the_application_line(tmp_path):
    """`line: application` (the mapping's default) renders what sbatch and local always rendered."""
    plugin = PLAYBOOKS / "eflows" / "filter_plugins" / "eflows.py"
    spec = importlib.util.spec_from_file_location("eflows_filters", plugin)
    eflows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eflows)
    for launcher in ("sbatch", "local"):
        assert eflows.launch_command("application", "app/w.py", ["a b"], image_path="/img", python="/py") == \
            eflows.launch_command(launcher, "app/w.py", ["a b"], image_path="/img", python="/py")
    for name, files in (("one", ["a.yaml", "b.yaml"]), ("two", ["a.yaml"]), ("three", ["a.yaml", "b.yaml"])):
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text("[]\n")
    (tmp_path / "a.yaml").write_text("[]\n")
    assert eflows.plugs(tmp_path, ["a.yaml", "b.yaml"]) == ["one", "three"]
    assert eflows.plugs(tmp_path / "nowhere", ["a.yaml"]) == []
