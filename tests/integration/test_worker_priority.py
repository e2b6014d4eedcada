"""A service's Ansible runs below the service itself: its workers' task processes (each in a session its
fork made with setsid) carry the niceness both as a process and as a scheduling group (Linux shares the
CPU between sessions first, so a niced process in a session of its own would still take a full share)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.executors.ansible import AnsibleExecutor
from orchestrator.executors.inventory import OperationRequest, Target

PROBE = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.shell: |
        cat /proc/self/autogroup
        ps -o ni= -p $$
        ps -o sid= -p $$
      register: probe
      changed_when: false
    - ansible.builtin.copy: { dest: "{{ out }}", content: "{{ probe.stdout }}" }
"""


def _probe(tmp_path: Path, nice: int) -> tuple[str, int, int]:
    (tmp_path / "probe.yaml").write_text(PROBE, encoding="utf-8")
    out = tmp_path / f"probe{nice}.txt"
    request = OperationRequest("op_p", str(tmp_path / "probe.yaml"), Target("orchestrator", "localhost"),
                               {"out": str(out)})
    with AnsibleExecutor(tmp_path / "home", nice=nice) as executor:
        assert executor.run_batch([request])["op_p"].ok
    autogroup, ni, sid = out.read_text(encoding="utf-8").splitlines()
    return autogroup, int(ni), int(sid)


def test_a_niced_workers_tasks_run_niced_in_a_niced_scheduling_group(tmp_path):
    if not os.path.exists("/proc/self/autogroup"):
        pytest.skip("this kernel has no autogroups")  # nice alone then does it
    autogroup, ni, sid = _probe(tmp_path, 10)
    assert ni == 10
    assert autogroup.endswith("nice 10"), autogroup
    assert sid != os.getsid(0), "the task runs in a session of its own (Ansible's fork made it)"


def test_an_unniced_worker_leaves_priorities_alone(tmp_path):
    if not os.path.exists("/proc/self/autogroup"):
        pytest.skip("this kernel has no autogroups")
    autogroup, ni, _sid = _probe(tmp_path, 0)
    assert ni == 0
    assert autogroup.endswith("nice 0"), autogroup
