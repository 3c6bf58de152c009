"""The repository stands on its own.

- No tracked file refers outside the repository: to the reference folder the
  project was started from, or to an absolute path of a developer's machine
  (home directories, the work area, the checkout itself).
- Every Markdown file a tracked file cites (``docs/sts.md``,
  ``bench/README.md``...) is tracked, and every section it cites is a heading
  of that file: ``docs/sts.md section 4.5``, ``sections 4.4-4.10``,
  ``sections 4.7 and 6``, ``docs/vending.md Example C``, or the same before
  the name (``Example C of docs/vending.md``).  Sections are cited with the
  word "section", never as a bare number.

Only tracked files are read (``git ls-files``, ``git grep``): well under a
second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = str(Path(__file__).resolve().relative_to(ROOT))

# Each pattern is written so that it does not match its own source text.
OUTSIDE = (
    r"(\.\./|/)share[d]/",  # the reference folder the project was started from
    r"/wor[k]/",  # the work area of the development machines
    r"/roo[t]/",  # home directories
    r"/hom[e]/",
)

MARKDOWN = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.md)\b")
URL = re.compile(r"\bhttps?://\S+")
NUMBER = r"\d+(?:\.\d+)*"
NUMBERS = rf"{NUMBER}(?:\s*(?:-|–|,|and|&)\s*{NUMBER})*"
CITED = rf"(?:(?:sections?|§)\s*(?P<sections>{NUMBERS})|Example (?P<example>[A-Z])\b)"
AFTER = re.compile(rf"[)\]`'\"]*,?\s+{CITED}", re.IGNORECASE)
BEFORE = re.compile(rf"{CITED}\s+(?:of|in)\s+(?:the\s+)?[`'\"\[(]*$", re.IGNORECASE)
BARE_NUMBER = re.compile(rf"[)\]`'\"]*\s+(?P<number>{NUMBER})\b(?!\s*(?:%|ms|s\b|kWh))")
# A line break inside a comment, a docstring or a doctest reads as a space.
LINE_BREAK = re.compile(r"\s*\n\s*(?:#:?|//|\*|>>>|\.\.\.)?\s*")
HEADING = re.compile(r"#{1,6}\s+(.*)")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def tracked() -> frozenset[str]:
    listing = _git("ls-files", "-z") if shutil.which("git") else None
    if listing is None or listing.returncode != 0:
        message = f"{ROOT} is not a git checkout: tracked files unknown"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return frozenset(p for p in listing.stdout.split("\0") if p)


def _grep(*args: str) -> list[str]:
    result = _git("grep", "-nI", *args)
    if result.returncode not in (0, 1):  # 1: nothing found
        raise RuntimeError(result.stderr)
    return result.stdout.splitlines()


def test_no_reference_outside_the_repository(tracked):
    hits = _grep("-E", "|".join(OUTSIDE))
    hits += _grep("-F", str(ROOT))
    assert not hits, (
        "tracked files refer outside the repository (describe what the project "
        "relies on in docs/ and cite public sources instead):\n" + "\n".join(hits)
    )


@cache
def _headings(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    "The section numbers and example letters of the headings of a Markdown file"
    numbers, examples = set(), set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            title = match.group(1)
            number = re.match(rf"({NUMBER})\.?\s", title)
            if number:
                numbers.add(number.group(1))
            examples.update(re.findall(r"\bExample ([A-Z])\b", title))
    return frozenset(numbers), frozenset(examples)


def _resolve(citing: str, reference: str, tracked: frozenset[str]) -> Path | None:
    "The tracked file a citation names, relative to the citing file or the root"
    for base in (ROOT / citing).parent, ROOT:
        path = Path(os.path.normpath(base / reference))
        if path.is_relative_to(ROOT) and str(path.relative_to(ROOT)) in tracked:
            return path
    return None


def citation_errors(citing: str, text: str, tracked: frozenset[str]) -> list[str]:
    """What is wrong with the Markdown citations of ``text`` (the content of
    the tracked file ``citing``): one line per citation."""
    errors = []
    text = URL.sub(" ", text)
    for match in MARKDOWN.finditer(text):
        reference = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        where = f"{citing}:{line}: {reference}"
        target = _resolve(citing, reference, tracked)
        if target is None:
            errors.append(f"{where}: no such tracked file")
            continue
        after = LINE_BREAK.sub(" ", text[match.end() : match.end() + 160])
        before = LINE_BREAK.sub(" ", text[max(0, match.start() - 80) : match.start()])
        cited = AFTER.match(after) or BEFORE.search(before)
        if cited is None:
            bare = BARE_NUMBER.match(after)
            if bare:
                errors.append(
                    f"{where} {bare.group('number')}: write 'section "
                    f"{bare.group('number')}'"
                )
            continue
        numbers, examples = _headings(target)
        if cited.group("example"):
            if cited.group("example") not in examples:
                errors.append(f"{where}: no heading 'Example {cited.group('example')}'")
            continue
        for number in re.findall(NUMBER, cited.group("sections")):
            if number not in numbers:
                errors.append(f"{where}: no section {number}")
    return errors


def test_cited_markdown_files_and_sections_exist(tracked):
    errors = []
    for citing in _grep("-l", "-F", "-e", ".md"):
        if citing == THIS_FILE:
            continue  # its examples of wrong citations are checked below
        text = (ROOT / citing).read_text(encoding="utf-8")
        errors += citation_errors(citing, text, tracked)
    assert not errors, "citations of missing files or sections:\n" + "\n".join(errors)


def test_the_citation_check_finds_what_is_wrong(tracked):
    "The check itself, on text written for it (the real docs are the targets)"
    good = (
        "# docs/sts.md sections 4.4-4.10 and docs/sts.md section 4.7\n"
        "# Example C of docs/vending.md; see [sts.md](sts.md) section 5\n"
    )
    assert citation_errors("docs/x.md", good, tracked) == []
    assert citation_errors("addons/x.py", good, tracked) == [
        "addons/x.py:2: sts.md: no such tracked file",
        "addons/x.py:2: sts.md: no such tracked file",
    ]
    bad = (
        "# docs/sts.md section 99, docs/vending.md Example Z,\n"
        "# docs/nowhere.md and docs/sts.md 4.5 (the amount field)\n"
        "# and a wrapped one: docs/dlms.md\n"
        "# section 42\n"
    )
    errors = citation_errors("addons/x.py", bad, tracked)
    assert [e.split(": ", 1)[1] for e in errors] == [
        "docs/sts.md: no section 99",
        "docs/vending.md: no heading 'Example Z'",
        "docs/nowhere.md: no such tracked file",
        "docs/sts.md 4.5: write 'section 4.5'",
        "docs/dlms.md: no section 42",
    ]
