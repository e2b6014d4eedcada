#!/usr/bin/env python3
"""Word count: orch's example PyCOMPSs application.

Usage::

    python wordcount.py INPUT_DIR OUTPUT_FILE [--blocks N]
    runcompss wordcount.py INPUT_DIR OUTPUT_FILE [--blocks N]      # or enqueue_compss ... on a cluster

What it does
    Reads every ``*.txt`` file directly inside INPUT_DIR (not in sub-folders; sorted by name; UTF-8, undecodable
    bytes replaced), splits all their lines into N contiguous blocks of about the same number of lines
    (default 4; fewer if there are fewer lines), counts the words of each block in a ``@task``, merges the
    partial counts pairwise in further tasks (a reduction tree), waits for the result with ``compss_wait_on``,
    and writes OUTPUT_FILE.

Word rule (implemented by the ``wordcount-kernels`` package)
    ``re.findall(r"[a-z0-9]+", text.lower())``: lower-case, then maximal runs of ASCII letters and digits.
    Words never span lines, so the block split does not change the result.

Output
    OUTPUT_FILE (parent folders are created) has one ``word count`` line per distinct word, sorted by count
    descending, then word ascending; it is empty if there is no word. The file is written to a temporary name
    and renamed, so it is never seen half-written. On stdout::

        mode: pycompss | mode: sequential
        kernels: wordcount-kernels 1.0.0
        wordcount: 3 files, 1234 words, 456 distinct -> OUTPUT_FILE

Modes
    With PyCOMPSs importable (``pycompss.api.task.task``, ``pycompss.api.api.compss_wait_on``), the functions
    below are COMPSs tasks (``mode: pycompss``). Without it, ``compss_fallback`` provides a no-op ``task`` and an
    identity ``compss_wait_on`` and everything runs in order in this process (``mode: sequential``).

Exit status
    0 success; 2 bad arguments or input (no such folder, no ``.txt`` file, ``--blocks`` < 1); 3 the
    ``wordcount-kernels`` package is not installed; 4 the output cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

try:
    from pycompss.api.api import compss_wait_on
    from pycompss.api.task import task

    MODE = "pycompss"
except ImportError:
    from compss_fallback import compss_wait_on, task

    MODE = "sequential"

try:
    import wordcount_kernels as kernels

    _KERNELS_ERROR: ImportError | None = None
except ImportError as exc:  # reported by _require_kernels(), in main() or in a task on a worker
    kernels = None
    _KERNELS_ERROR = exc

EXIT_USAGE = 2
EXIT_NO_KERNELS = 3
EXIT_OUTPUT = 4
DEFAULT_BLOCKS = 4

KERNELS_MISSING_MESSAGE = (
    "wordcount: error: the 'wordcount-kernels' package is not installed "
    "(cannot import module 'wordcount_kernels': {error}).\n"
    "Install it in this Python environment, e.g. 'pip install ./workflows/wordcount/kernels', "
    "or from the workflow's wheelhouse: 'pip install --no-index --find-links WHEELHOUSE wordcount-kernels'."
)


class UsageError(Exception):
    """Bad arguments or input: reported on stderr with exit status 2."""


def _require_kernels():
    if kernels is None:
        raise RuntimeError(KERNELS_MISSING_MESSAGE.format(error=_KERNELS_ERROR))
    return kernels


@task(returns=1)
def count_block(text: str) -> dict[str, int]:
    """Task: word counts of one block of text."""
    return _require_kernels().count_words(text)


@task(returns=1)
def merge_two(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Task: sum of two partial counts."""
    return _require_kernels().merge_counts(a, b)


def list_inputs(input_dir: str) -> list[str]:
    """The ``*.txt`` files directly in ``input_dir``, sorted by name."""
    if not os.path.isdir(input_dir):
        raise UsageError(f"input folder not found: {input_dir}")
    files = sorted(
        os.path.join(input_dir, name)
        for name in os.listdir(input_dir)
        if name.endswith(".txt") and os.path.isfile(os.path.join(input_dir, name))
    )
    if not files:
        raise UsageError(f"no .txt file in input folder: {input_dir}")
    return files


def read_lines(files: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines.extend(handle.read().splitlines())
    return lines


def split_blocks(lines: Sequence[str], blocks: int) -> list[str]:
    """``blocks`` contiguous slices of ``lines`` of near-equal length (at least one, at most ``len(lines)``)."""
    count = max(1, min(blocks, len(lines)))
    total = len(lines)
    return ["\n".join(lines[k * total // count : (k + 1) * total // count]) for k in range(count)]


def wordcount(blocks_text: Sequence[str]):
    """Submit one counting task per block, then a reduction tree of merge tasks; return the (future) total."""
    partials = [count_block(text) for text in blocks_text]
    while len(partials) > 1:
        merged = [merge_two(partials[i], partials[i + 1]) for i in range(0, len(partials) - 1, 2)]
        if len(partials) % 2:
            merged.append(partials[-1])
        partials = merged
    return partials[0]


def write_output(path: str, pairs) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".wordcount-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for word, n in pairs:
                handle.write(f"{word} {n}\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="wordcount",
        description="Count words across the .txt files of INPUT_DIR (PyCOMPSs tasks, or sequential).",
    )
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="folder holding one or more .txt files")
    parser.add_argument("output_file", metavar="OUTPUT_FILE", help="result: one 'word count' line per word")
    parser.add_argument(
        "--blocks",
        type=int,
        default=DEFAULT_BLOCKS,
        metavar="N",
        help=f"number of counting tasks (default {DEFAULT_BLOCKS})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"mode: {MODE}", flush=True)
    if kernels is None:
        print(KERNELS_MISSING_MESSAGE.format(error=_KERNELS_ERROR), file=sys.stderr)
        return EXIT_NO_KERNELS
    print(f"kernels: wordcount-kernels {getattr(kernels, '__version__', '?')}", flush=True)
    try:
        if args.blocks < 1:
            raise UsageError(f"--blocks must be at least 1, got {args.blocks}")
        files = list_inputs(args.input_dir)
        blocks_text = split_blocks(read_lines(files), args.blocks)
    except (UsageError, OSError) as exc:
        print(f"wordcount: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    counts = compss_wait_on(wordcount(blocks_text))
    pairs = kernels.top_words(counts)
    try:
        write_output(args.output_file, pairs)
    except OSError as exc:
        print(f"wordcount: error: cannot write {args.output_file}: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    total = sum(n for _, n in pairs)
    print(f"wordcount: {len(files)} files, {total} words, {len(pairs)} distinct -> {args.output_file}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
