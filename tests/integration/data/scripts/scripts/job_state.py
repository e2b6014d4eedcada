"""Runnable.run, polled: the job's state from the exit code it left (none yet: still running)."""
import os
from pathlib import Path

job = Path(os.environ["TOSCA_JOB_ID"])
code = job / "exit_code"
if not code.exists():
    os.environ["TOSCA_JOB_STATUS"] = "RUNNING"
elif code.read_text().strip() == "0":
    os.environ["TOSCA_JOB_STATUS"] = "COMPLETED"
else:
    os.environ["TOSCA_JOB_STATUS"] = "FAILED"
    os.environ["TOSCA_JOB_ERROR"] = (job / "stderr").read_text()[-500:]
