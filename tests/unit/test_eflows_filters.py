"""The eFlows4HPC launch renderer and data places (playbooks/eflows/filter_plugins/eflows.py): the exact
enqueue_compss line, the sbatch/local line from the same code, ${name} substitution."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "playbooks" / "eflows" / "filter_plugins" / "eflows.py"
spec = importlib.util.spec_from_file_location("eflows_filters", PLUGIN)
eflows = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eflows)


def test_enqueue_compss_command_line_is_exact():
    line = eflows.launch_command(
        "enqueue_compss", "app/wordcount.py", ["/scratch/in", "/scratch/out/counts.txt"],
        image_path="/scratch/images/wordcount-abc", python="/x/bin/python", num_nodes=2, qos="debug",
        compss_options=["--exec_time=30", "--worker_in_master_cpus=4"], modules=["COMPSs/3.3"])
    assert line == ("module load COMPSs/3.3 && enqueue_compss --num_nodes=2 --qos=debug "
                    "--pythonpath=/scratch/images/wordcount-abc/site-packages --exec_time=30 "
                    "--worker_in_master_cpus=4 --lang=python /scratch/images/wordcount-abc/app/wordcount.py "
                    "/scratch/in /scratch/out/counts.txt")


def test_enqueue_compss_with_a_container_image():
    line = eflows.launch_command("enqueue_compss", "/app/main.py", ["a b"], image_path="/images/wf.sif",
                                 num_nodes=1)
    assert line == ("enqueue_compss --num_nodes=1 --container_image=/images/wf.sif --lang=python "
                    "/app/main.py 'a b'")


def test_sbatch_and_local_run_the_application_with_the_installed_runtime():
    for launcher in ("sbatch", "local"):
        line = eflows.launch_command(launcher, "app/wordcount.py", ["/in dir", "/out"], image_path="/img",
                                     python="/venv/bin/python")
        assert line == "PYTHONPATH=/img/site-packages /venv/bin/python /img/app/wordcount.py '/in dir' /out"


def test_unknown_launcher_is_refused():
    with pytest.raises(ValueError, match="unknown launcher 'mpirun'"):
        eflows.launch_command("mpirun", "x", [])


def test_substitution_of_workflow_inputs():
    inputs = {"staged_in_data_path": "/data/in", "n": 3}
    assert eflows.substitute(["${staged_in_data_path}/data.txt", "--n=${n}", "plain"], inputs) == [
        "/data/in/data.txt", "--n=3", "plain"]
    with pytest.raises(ValueError, match=r"\$\{missing\} is not a workflow input"):
        eflows.substitute("${missing}", inputs)


def test_data_places():
    hosts = {"environment": {}, "data": {}}
    assert eflows.data_place("data:/data/sample", hosts) == {"kind": "ssh", "host": "data", "path": "/data/sample",
                                                             "url": ""}
    assert eflows.data_place("http://10.1.2.3:8080/set.tar.gz", hosts)["kind"] == "url"
    assert eflows.data_place("/tmp/results", hosts) == {"kind": "local", "host": "", "path": "/tmp/results", "url": ""}
    with pytest.raises(ValueError, match="nowhere is not a host"):
        eflows.data_place("nowhere:/x", hosts)
    with pytest.raises(ValueError, match="must be absolute"):
        eflows.data_place("relative/path", hosts)


HOSTILE = ["x$(touch M)y", "x`touch M`y", 'x";touch M;"y', "x';touch M;'y", "a b", "line\nbreak", "--help", "*"]


def test_launch_line_gives_each_hostile_value_as_one_word():
    for launcher in ("sbatch", "local", "enqueue_compss"):
        line = eflows.launch_command(launcher, "app/w.py", HOSTILE, image_path="/img dir/$(x)", python="/v env/py",
                                     qos="q;x", compss_options=["--opt=a b"], modules=["m;x"])
        words = shlex.split(line)
        assert words[-len(HOSTILE):] == HOSTILE
        assert "/img dir/$(x)/app/w.py" in words and "m;x" in words


def test_data_places_keep_every_byte_of_a_name_but_redundant_slashes():
    hosts = {"environment": {}}
    assert eflows.data_place("environment:/a//b\nc/", hosts)["path"] == "/a/b\nc"
    assert eflows.data_place("/x$(y)/'z'/", hosts)["path"] == "/x$(y)/'z'"
    for url in ("http://h/a/..", "http://h/a/.", "http://h/a\nb"):
        with pytest.raises(ValueError, match="a URL must name a file"):
            eflows.data_place(url, hosts)


def test_targets_that_cannot_be_replaced_safely():
    assert eflows.target_problem("/data/in") == ""
    assert eflows.target_problem("/data/x y$(z)") == ""
    for path, problem in (("", "empty"), ("/", "top-level"), ("/tmp", "top-level"), ("data/in", "relative"),
                          ("/data/../etc", "'..'"), ("/data/./in", "'.'")):
        assert problem in eflows.target_problem(path), path
