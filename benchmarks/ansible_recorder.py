"""Run one orch command and keep what it gave Ansible: each batch's playbook and inventory, in its order.

    python benchmarks/ansible_recorder.py RECORD_DIR -- orch-args...

orch writes each batch's inventory (the operations' variables and connection settings) into a private
folder and removes it when the batch ends, and has no option to keep it. This wrapper, used by
deploy_cost.py only, patches the executor in its own process (orch's code is untouched) so that before
each batch runs, its inventory is copied to RECORD_DIR/NNN-inventory.yaml and a line is appended to
RECORD_DIR/batches.jsonl: {"seq", "playbook", "inventory", "started", "ended", "rc"}. Copying a file of a
few kB per batch is all it adds to the command. RECORD_DIR may hold secrets if the inventories do: it
is made 0700.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install(record_dir: Path) -> None:
    from orchestrator.executors import ansible

    record_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = threading.Lock()  # batches run from several threads at once
    counter = iter(range(1, 1_000_000))
    original = ansible.AnsibleExecutor._run_in_worker

    def recording(self, playbook, inventory, handle, cancel, timeout):
        with lock:
            seq = next(counter)
        kept = record_dir / f"{seq:03d}-inventory.yaml"
        shutil.copyfile(inventory, kept)
        started = time.time()
        rc, error = original(self, playbook, inventory, handle, cancel, timeout)
        line = {"seq": seq, "playbook": playbook, "inventory": str(kept), "started": started, "ended": time.time(),
                "rc": rc}
        with lock, open(record_dir / "batches.jsonl", "a") as out:
            out.write(json.dumps(line) + "\n")
        return rc, error

    ansible.AnsibleExecutor._run_in_worker = recording


def main() -> int:
    record_dir, separator, *args = sys.argv[1:]
    if separator != "--":
        raise SystemExit(__doc__)
    if os.environ.get("ORCH_ANSIBLE") == "runner":
        raise SystemExit("the recorder follows orch's workers; unset ORCH_ANSIBLE")
    install(Path(record_dir))
    from orchestrator.cli import main as orch_main

    orch_main(args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
