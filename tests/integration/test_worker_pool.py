"""A service's pool of warm Ansible workers (executors.ansible.WorkerPool): a command's executor takes a worker
started beforehand, runs its batches in it with the command's own SSH masters' folder, and the worker ends
with the command; the pool has started the next one meanwhile, and close() ends the ones still waiting."""

from __future__ import annotations

import os

from orchestrator.executors.ansible import AnsibleExecutor, OperationRequest, Target, WorkerPool

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Write down the SSH masters' folder this task's connection would use
      ansible.builtin.copy:
        content: "{{ lookup('env', 'ANSIBLE_SSH_CONTROL_PATH_DIR') }}"
        dest: "{{ out }}"
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_command_takes_a_warm_worker_of_its_own_and_its_runs_use_its_own_ssh_folder(tmp_path):
    playbook = tmp_path / "play.yaml"
    playbook.write_text(PLAY)
    pool = WorkerPool()
    ended: list[int] = []
    try:
        for i in range(2):
            waiting = pool.ready_pids
            assert len(waiting) == 1 and alive(waiting[0])
            out = tmp_path / f"seen-{i}"
            with AnsibleExecutor(tmp_path / "home", warm=True, pool=pool) as executor:
                assert executor.worker_pids == waiting  # the pool's worker, no new one
                assert len(pool.ready_pids) == 1 and pool.ready_pids != waiting  # the next one is starting
                request = OperationRequest("op", str(playbook), Target("orchestrator", "localhost"), {"out": str(out)})
                result = executor.run_batch([request])
                assert result["op"].ok, result["op"].message
                assert out.read_text() == executor.control_dir  # not the folder of a command before it
            assert not alive(waiting[0])  # it ended with its command: never given to a second one
            ended += waiting
        with AnsibleExecutor(tmp_path / "home", warm=True, nice=5, pool=pool) as other:
            assert other.worker_pids and set(other.worker_pids).isdisjoint(pool.ready_pids)  # not its settings
        waiting = pool.ready_pids
    finally:
        pool.close()
    assert waiting and not any(alive(pid) for pid in waiting + ended)
    assert pool.ready_pids == [] and pool.take(20, 0) is None  # a closed pool starts nothing more
