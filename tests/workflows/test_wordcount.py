"""The example workflow application (workflows/wordcount): its kernel package and its app, run sequentially.

The app always runs as a subprocess with this interpreter, its kernels either installed with
`pip install --target` into a temporary folder (offline, when this interpreter can build a wheel) or,
when it cannot, put on PYTHONPATH from the source folder; under CI (CI=true), where the test extras bring
setuptools and wheel, not building is a failure, not a fallback. Its output is compared with a reference that this
file computes itself with collections.Counter and the documented word rule, not with the kernels.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "wordcount"
APP = WORKFLOW / "app" / "wordcount.py"
KERNELS = WORKFLOW / "kernels"
SAMPLE = WORKFLOW / "data" / "sample"

UNDER_CI = os.environ.get("CI", "").lower() in ("true", "1")
NO_WHEEL = "this interpreter has no setuptools bdist_wheel (setuptools < 70.1 without `wheel`)"

SUMMARY = re.compile(r"^wordcount: (\d+) files, (\d+) words, (\d+) distinct -> (.+)$")
WORD = re.compile(r"[a-z0-9]+")  # the rule documented in wordcount_kernels and the app


# --- the reference -------------------------------------------------------------------------------------------


def reference_counter(input_dir: Path) -> collections.Counter:
    """Counts of all words of the *.txt files directly in input_dir, by the documented rule."""
    counter: collections.Counter = collections.Counter()
    for path in input_dir.iterdir():
        if path.is_file() and path.suffix == ".txt":
            text = path.read_bytes().decode("utf-8", errors="replace")
            counter.update(WORD.findall(text.lower()))
    return counter


def reference_output(counter: collections.Counter) -> str:
    # Two stable sorts: by word, then by count descending.
    ordered = sorted(sorted(counter.items()), key=lambda item: -item[1])
    return "".join(f"{word} {count}\n" for word, count in ordered)


def pycompss_importable() -> bool:
    return importlib.util.find_spec("pycompss") is not None


# --- running the app -----------------------------------------------------------------------------------------


def base_env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the workflow's folders
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def run_app(pythonpath: str | None, *args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *python_flags, str(APP), *args],
        capture_output=True, text=True, timeout=60, env=base_env(pythonpath), cwd=ROOT, check=False,
    )


def check_run(result: subprocess.CompletedProcess, input_dir: Path, output: Path, expected_mode: str) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"mode: {expected_mode}"
    assert lines[1] == "kernels: wordcount-kernels 1.0.0"
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    counter = reference_counter(input_dir)
    n_files = sum(1 for p in input_dir.iterdir() if p.is_file() and p.suffix == ".txt")
    assert match.groups() == (str(n_files), str(sum(counter.values())), str(len(counter)), str(output))
    assert output.read_text(encoding="utf-8") == reference_output(counter)


@pytest.fixture(scope="module")
def kernels_path(tmp_path_factory) -> str:
    """A PYTHONPATH entry that provides wordcount_kernels: an offline `pip install --target`, else the source."""
    work = tmp_path_factory.mktemp("kernels")
    source = work / "src"
    shutil.copytree(KERNELS, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode == 0 and (target / "wordcount_kernels" / "__init__.py").is_file():
        return str(target)
    if UNDER_CI:
        pytest.fail(f"offline pip install --target of the kernels failed under CI:\n{result.stderr[-3000:]}",
                    pytrace=False)
    # This interpreter cannot build a wheel offline (setuptools < 70.1 without `wheel`): use the sources.
    return str(KERNELS)


@pytest.fixture
def expected_mode() -> str:
    return "pycompss" if pycompss_importable() else "sequential"


# --- the kernel package --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernels_module():
    spec = importlib.util.spec_from_file_location(
        "_wordcount_kernels_under_test", KERNELS / "wordcount_kernels" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernels_functions(kernels_module):
    k = kernels_module
    assert k.__version__ == "1.0.0"
    assert k.count_words("Don't stop: e-mail 2 CAFÉ, café; x_y\tX") == {
        "don": 1, "t": 1, "stop": 1, "e": 1, "mail": 1, "2": 1, "caf": 2, "x": 2, "y": 1}
    assert k.count_words("") == {}
    a, b = {"x": 1, "y": 2}, {"y": 3, "z": 1}
    assert k.merge_counts(a, b) == {"x": 1, "y": 5, "z": 1}
    assert a == {"x": 1, "y": 2} and b == {"y": 3, "z": 1}  # inputs untouched
    assert k.top_words({"b": 2, "a": 2, "c": 5, "d": 1}) == [("c", 5), ("a", 2), ("b", 2), ("d", 1)]
    assert k.top_words({"b": 2, "a": 2, "c": 5}, n=2) == [("c", 5), ("a", 2)]


def test_kernels_pyproject():
    import tomllib

    meta = tomllib.loads((KERNELS / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "wordcount-kernels"
    assert meta["project"]["version"] == "1.0.0"
    assert meta["project"].get("dependencies", []) == []
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"


def test_requirements_list_only_pypi_names():
    for raw in (WORKFLOW / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*([<>=!~]=?.*)?$", line), line
            assert "kernels" not in line and "/" not in line


def _can_build_wheels() -> bool:
    probe = ("import setuptools\n"
             "try:\n    import setuptools.command.bdist_wheel\n"
             "except ImportError:\n    import wheel.bdist_wheel\n")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60, check=False).returncode == 0


def test_pip_wheel_builds_the_kernels(tmp_path):
    if not _can_build_wheels():
        if UNDER_CI:  # the test extras (pyproject.toml) bring setuptools and wheel
            pytest.fail(f"{NO_WHEEL}: CI must build the wheel", pytrace=False)
        pytest.skip(NO_WHEEL)
    source = tmp_path / "kernels"  # a copy: an in-tree build would leave build/ and *.egg-info behind
    shutil.copytree(KERNELS, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    wheelhouse = tmp_path / "wheelhouse"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-index",
         "--no-deps", "--no-build-isolation", str(source), "-w", str(wheelhouse)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    wheels = list(wheelhouse.glob("*.whl"))
    assert [w.name for w in wheels] == ["wordcount_kernels-1.0.0-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as whl:
        names = whl.namelist()
        assert "wordcount_kernels/__init__.py" in names
        metadata = whl.read("wordcount_kernels-1.0.0.dist-info/METADATA").decode()
    assert "Name: wordcount-kernels" in metadata and "Version: 1.0.0" in metadata
    assert "Requires-Dist" not in metadata


# --- the app -------------------------------------------------------------------------------------------------


def test_sample_dataset(kernels_path, expected_mode, tmp_path):
    txt = sorted(p.name for p in SAMPLE.glob("*.txt"))
    assert 2 <= len(txt) <= 3
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 16 * 1024
    output = tmp_path / "out" / "counts.txt"  # parent folder created by the app
    result = run_app(kernels_path, str(SAMPLE), str(output))
    check_run(result, SAMPLE, output, expected_mode)
    assert output.read_text().splitlines()[0].startswith("the ")


def _generated_dataset(root: Path) -> Path:
    rng = random.Random(20240614)
    vocab = sorted({"".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(1, 8)))
                    for _ in range(600)})
    seps = [" ", "  ", ", ", ". ", "!", "-", "_", "'", "\t", "/", "é", "—", "ß", "\u2028", "\r\n", "\n", "\x0c"]
    data = root / "generated"
    data.mkdir()
    for i in range(5):
        parts = []
        for _ in range(rng.randint(3000, 6000)):
            word = rng.choice(vocab[: rng.randint(1, len(vocab))])  # skewed: early words are frequent
            word = "".join(c.upper() if rng.random() < 0.2 else c for c in word)
            parts.append(word + rng.choice(seps))
        (data / f"part-{i:02d}.txt").write_text("".join(parts), encoding="utf-8", newline="")
    (data / "empty.txt").write_text("")
    (data / "latin1.txt").write_bytes(b"caf\xe9 Caf\xe9 \xff\xfeword WORD word\n")  # undecodable bytes
    (data / "ignored.md").write_text("ignoredmarkdownword " * 50)
    (data / "sub").mkdir()
    (data / "sub" / "nested.txt").write_text("ignorednestedword " * 50)
    (data / "folder.txt").mkdir()  # a folder named like an input file is not an input
    return data


def test_generated_dataset_any_block_count(kernels_path, expected_mode, tmp_path):
    data = _generated_dataset(tmp_path)
    outputs = []
    for blocks in ("1", "3", "7", "100000"):
        output = tmp_path / f"out-{blocks}.txt"
        result = run_app(kernels_path, str(data), str(output), "--blocks", blocks)
        check_run(result, data, output, expected_mode)
        outputs.append(output.read_text())
    assert len(set(outputs)) == 1
    text = outputs[0]
    assert "ignoredmarkdownword" not in text and "ignorednestedword" not in text
    assert re.search(r"^word 3$", text, re.MULTILINE) and re.search(r"^caf 2$", text, re.MULTILINE)
    lines = [line.split(" ") for line in text.splitlines()]
    assert all(len(parts) == 2 and WORD.fullmatch(parts[0]) and parts[1].isdigit() for parts in lines)


def test_default_blocks_and_rerun_overwrites(kernels_path, tmp_path):
    output = tmp_path / "out.txt"
    output.write_text("stale\n")
    result = run_app(kernels_path, str(SAMPLE), str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_text() == reference_output(reference_counter(SAMPLE))
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind


def test_fails_clearly_without_kernels(tmp_path):
    output = tmp_path / "out.txt"
    # -S: no site-packages, so neither an installed wordcount_kernels nor pycompss; no PYTHONPATH either.
    result = run_app(None, str(SAMPLE), str(output), python_flags=("-S",))
    assert result.returncode == 3
    assert result.stdout.splitlines() == ["mode: sequential"]
    assert "wordcount-kernels" in result.stderr and "not installed" in result.stderr
    assert "pip install" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.parametrize("case", ["missing_dir", "no_txt", "zero_blocks", "output_is_dir"])
def test_bad_input_is_reported(kernels_path, tmp_path, case):
    input_dir, output, extra, code = SAMPLE, tmp_path / "out.txt", [], 2
    if case == "missing_dir":
        input_dir, message = tmp_path / "nope", "input folder not found"
    elif case == "no_txt":
        input_dir = tmp_path / "empty"
        input_dir.mkdir()
        (input_dir / "notes.md").write_text("hello")
        message = "no .txt file"
    elif case == "zero_blocks":
        extra, message = ["--blocks", "0"], "--blocks must be at least 1"
    else:
        output.mkdir()
        code, message = 4, "cannot write"
    result = run_app(kernels_path, str(input_dir), str(output), *extra)
    assert result.returncode == code, result.stderr
    assert f"wordcount: error: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    if case != "output_is_dir":
        assert not output.exists()


STUB_TASK = '''
import atexit, sys
CALLS = []
atexit.register(lambda: print(f"stub: {len(CALLS)} task calls, kwargs {sorted(set(CALLS))}", file=sys.stderr))

class task:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
    def __call__(self, func):
        def wrapper(*args, **kwargs):
            CALLS.append(repr(sorted(self.kwargs.items())))
            return func(*args, **kwargs)
        return wrapper
'''

STUB_API = '''
import sys
def compss_wait_on(*objs, **kwargs):
    print("stub: compss_wait_on", file=sys.stderr)
    return objs[0] if len(objs) == 1 else list(objs)
'''


def test_uses_the_pycompss_api_when_importable(kernels_path, tmp_path):
    """With a stand-in `pycompss` on the path the app takes the PyCOMPSs branch and uses @task(returns=1)."""
    stub = tmp_path / "stub"
    (stub / "pycompss" / "api").mkdir(parents=True)
    (stub / "pycompss" / "__init__.py").write_text("")
    (stub / "pycompss" / "api" / "__init__.py").write_text("")
    (stub / "pycompss" / "api" / "task.py").write_text(STUB_TASK)
    (stub / "pycompss" / "api" / "api.py").write_text(STUB_API)
    output = tmp_path / "out.txt"
    result = run_app(os.pathsep.join([str(stub), kernels_path]), str(SAMPLE), str(output), "--blocks", "5")
    check_run(result, SAMPLE, output, "pycompss")
    # 5 counting tasks and 4 merges, all declared with returns=1; one wait at the end.
    assert "stub: 9 task calls, kwargs [\"[('returns', 1)]\"]" in result.stderr
    assert result.stderr.count("stub: compss_wait_on") == 1
