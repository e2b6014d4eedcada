"""The hand-written baseline of benchmarks/run_overhead.py: the minimal workflow's work done by one script,
from this controller, over SSH with the site's ssh_config (so as the same unprivileged cluster user orch logs
in as), and the datasets it and orch are given.

What it does, as a person would do it by hand:
    stage in   one tar stream data host -> this machine -> login host (`ssh data tar c | ssh login tar x`),
               the source's per-file sha256 manifest coming back on the same connection's stderr, the
               target's computed after unpacking: both must be equal
    job        one connection to login: write the job script (the same launch line orch's job runs,
               rendered by the same function, playbooks/eflows/filter_plugins/eflows.py), `sbatch --wait`
    stage out  one connection: the result's sha256, then its bytes; checked here

No compression (nor has orch's embedded mover, for a dataset above 4 MiB), no retries, no records.
The embedded variant does the same on this machine with cp-like tar and the command run as a process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shlex
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# every file's checksum, one line each, in a stable order: the embedded mover's own manifest
MANIFEST = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --"

# Made on the data host (or here, for the embedded site) by its own python3: `python3 - FOLDER SIZE_MB`.
# Words drawn from a fixed vocabulary with a fixed seed: the same dataset every time, and text that
# compresses about as well as real text (a repeated block would make gzip's part unrealistically cheap).
GENERATOR = r"""
import os, random, sys
folder, size = sys.argv[1], int(float(sys.argv[2]) * 1024 * 1024)
rng = random.Random(18)
letters = "abcdefghijklmnopqrstuvwxyz"
vocabulary = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(30000)]
os.makedirs(folder, exist_ok=True)
files = max(1, min(8, size // (128 << 20)))
for i in range(files):
    want = size // files
    with open(os.path.join(folder, "part-%02d.txt" % i), "w") as out:
        while want > 0:
            words = rng.choices(vocabulary, k=240000)
            text = "\n".join(" ".join(words[j:j + 16]) for j in range(0, len(words), 16)) + "\n"
            if len(text) > want:
                text = text[:text.rfind("\n", 0, want) + 1] or text[:want]
            out.write(text)
            want -= len(text)
"""


def launch_line(image_path: str, python: str, input_dir: str, output_file: str) -> str:
    """The shell line orch's job runs (launcher sbatch or local: the application with the installed runtime)."""
    spec = importlib.util.spec_from_file_location(
        "eflows_filters", ROOT / "playbooks" / "eflows" / "filter_plugins" / "eflows.py")
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    return filters.launch_command("sbatch", "app/wordcount.py", [input_dir, output_file], image_path, python)


def _ssh(ssh_config: Path, host: str, command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(ssh_config), host, command], check=False, **kwargs)


def _checked(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if done.returncode != 0:
        err = done.stderr if isinstance(done.stderr, str) else (done.stderr or b"").decode(errors="replace")
        raise RuntimeError(f"baseline: {what} failed ({done.returncode}): {err[-2000:]}")
    return done


def make_dataset(ssh_config: Path | None, folder: str, size_mb: float) -> None:
    """The generated dataset: on the data host over SSH, or here when ssh_config is None."""
    argv = ["python3", "-", folder, str(size_mb)]
    if ssh_config is None:
        _checked(subprocess.run(argv, input=GENERATOR, text=True, capture_output=True, check=False), "generate")
    else:
        command = " ".join(shlex.quote(a) for a in argv)
        _checked(_ssh(ssh_config, "data", command, input=GENERATOR, text=True, capture_output=True), "generate")


def site_baseline(ssh_config: Path, source: str, work: str, image_path: str, python: str,
                  result_dir: Path) -> dict:
    """The workflow by hand on the simulated site. `work` is a fresh folder on the login host."""
    target, results, jobs = f"{work}/input", f"{work}/results", f"{work}/job"
    phases: dict[str, float] = {}
    began = time.monotonic()
    # stage in: the source manifest on stderr, the tar on stdout, straight into the login host's tar
    sender = subprocess.Popen(["ssh", "-F", str(ssh_config), "data",
                               f"cd -- {shlex.quote(source)} && {MANIFEST} >&2 && tar -cf - ."],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    receive = (f"rm -rf -- {shlex.quote(work)} && mkdir -p -- {shlex.quote(target)} && "
               f"tar -xf - --no-same-owner -C {shlex.quote(target)} && cd -- {shlex.quote(target)} && {MANIFEST}")
    receiver = subprocess.run(["ssh", "-F", str(ssh_config), "login", receive], stdin=sender.stdout,
                              capture_output=True, text=True, check=False)
    sender.stdout.close()
    sent_manifest = sender.stderr.read().decode()
    sender.wait()
    _checked(receiver, "stage in (receive)")
    if sender.returncode != 0:
        raise RuntimeError(f"baseline: stage in (send) failed ({sender.returncode}): {sent_manifest[-2000:]}")
    if receiver.stdout != sent_manifest or not sent_manifest:
        raise RuntimeError("baseline: the staged-in files are not the source's (sha256 manifests differ)")
    phases["stage_in_s"] = time.monotonic() - began

    mark = time.monotonic()
    script = f"#!/bin/bash\n{launch_line(image_path, python, target, results + '/counts.txt')}\n"
    submit = (f"mkdir -p -- {shlex.quote(jobs)} && cat > {shlex.quote(jobs + '/job.sh')} && "
              f"sbatch --wait --parsable --job-name=ovh-baseline --chdir={shlex.quote(jobs)} "
              f"--output={shlex.quote(jobs + '/slurm-%j.out')} --error={shlex.quote(jobs + '/slurm-%j.err')} "
              f"{shlex.quote(jobs + '/job.sh')}")
    job = _checked(_ssh(ssh_config, "login", submit, input=script, capture_output=True, text=True), "sbatch --wait")
    phases["job_s"] = time.monotonic() - mark

    mark = time.monotonic()
    result = f"{results}/counts.txt"
    fetched = _checked(_ssh(ssh_config, "login", f"sha256sum < {shlex.quote(result)} >&2 && cat -- "
                            f"{shlex.quote(result)}", capture_output=True, stdin=subprocess.DEVNULL), "stage out")
    _write_checked(result_dir, fetched.stdout, fetched.stderr.decode().split()[0])
    phases["stage_out_s"] = time.monotonic() - mark
    phases["total_s"] = time.monotonic() - began
    return {**{k: round(v, 3) for k, v in phases.items()}, "job_id": job.stdout.strip().split(";")[0],
            "files": len(sent_manifest.splitlines())}


def embedded_baseline(source: Path, work: Path, image_path: str, python: str, result_dir: Path) -> dict:
    """The same by hand on this machine: tar copy with manifests, the launch line as a process, a checked copy."""
    target, results = work / "input", work / "results"
    phases: dict[str, float] = {}
    began = time.monotonic()
    quoted = shlex.quote(str(target))
    stage = (f"rm -rf -- {shlex.quote(str(work))} && mkdir -p -- {quoted} && cd -- {shlex.quote(str(source))} && "
             f"{MANIFEST} > {shlex.quote(str(work))}/sent && tar -cf - . | tar -xf - -C {quoted} && "
             f"cd -- {quoted} && {MANIFEST} | cmp -s - {shlex.quote(str(work))}/sent")
    _checked(subprocess.run(["bash", "-c", stage], capture_output=True, text=True, check=False), "stage in")
    phases["stage_in_s"] = time.monotonic() - began
    mark = time.monotonic()
    line = launch_line(image_path, python, str(target), str(results / "counts.txt"))
    _checked(subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False, cwd=work), "job")
    phases["job_s"] = time.monotonic() - mark
    mark = time.monotonic()
    data = (results / "counts.txt").read_bytes()
    _write_checked(result_dir, data, hashlib.sha256(data).hexdigest())
    phases["stage_out_s"] = time.monotonic() - mark
    phases["total_s"] = time.monotonic() - began
    return {k: round(v, 3) for k, v in phases.items()}


def _write_checked(result_dir: Path, data: bytes, expected_sha256: str) -> None:
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise RuntimeError("baseline: the result file changed on its way back (sha256 differs)")
    result_dir.mkdir(parents=True, exist_ok=True)
    (result_dir / "counts.txt").write_bytes(data)
