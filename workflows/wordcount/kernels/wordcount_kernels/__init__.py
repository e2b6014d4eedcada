"""Kernels of orch's example word count workflow.

The word rule, used by every function here and relied upon by the tests::

    words = re.findall(r"[a-z0-9]+", text.lower())

That is: the text is lower-cased with ``str.lower()``, then a word is a maximal run of the ASCII characters
``a``-``z`` and ``0``-``9``. Everything else (spaces, punctuation, apostrophes, hyphens, underscores,
non-ASCII letters such as ``é``) separates words, so ``"Don't"`` gives ``don`` and ``t``, ``"e-mail"`` gives
``e`` and ``mail``, and ``"café"`` gives ``caf``.

Counts are plain ``dict[str, int]`` so that they pickle cheaply between PyCOMPSs tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["WORD_RE", "__version__", "count_words", "merge_counts", "top_words"]

__version__ = "1.0.0"

#: Applied to ``text.lower()``; see the module docstring.
WORD_RE = re.compile(r"[a-z0-9]+")


def iter_words(text: str) -> Iterable[str]:
    """Yield the words of ``text`` by the module's rule, in order."""
    for match in WORD_RE.finditer(text.lower()):
        yield match.group(0)


def count_words(text: str) -> dict[str, int]:
    """Count the words of ``text`` (``re.findall(r"[a-z0-9]+", text.lower())``)."""
    counts: dict[str, int] = {}
    for word in iter_words(text):
        counts[word] = counts.get(word, 0) + 1
    return counts


def merge_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Return a new dict with the per-word sum of ``a`` and ``b``; neither input is modified."""
    if len(a) < len(b):
        a, b = b, a
    merged = dict(a)
    for word, n in b.items():
        merged[word] = merged.get(word, 0) + n
    return merged


def top_words(counts: Mapping[str, int], n: int | None = None) -> list[tuple[str, int]]:
    """Return ``(word, count)`` pairs sorted by count descending, then word ascending.

    With ``n``, only the first ``n`` pairs. The order is total, so the result is deterministic.
    """
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ordered if n is None else ordered[: max(n, 0)]
