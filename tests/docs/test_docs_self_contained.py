"""The repository stands on its own: its docs and code point only at files it holds.

A reader of a clone has the repository and nothing else, so a citation of a team's private
notes, or a link to a page that was renamed, leaves them with nothing to follow.
"""

from __future__ import annotations

import re
from pathlib import Path

from doc_examples import REPO, prose_lines

# Names of notes that live outside the repository; spelled in pieces so this file passes too.
OUTSIDE = re.compile(
    "|".join(re.escape(n) for n in ("DESIGN" + ".md", "STYLE" + ".md", "../" + "shared"))
)
MARKDOWN = sorted(
    p
    for p in REPO.rglob("*.md")
    if not any(part.startswith(".") for part in p.relative_to(REPO).parts)
)
SOURCES = sorted(
    p
    for folder in ("src", "tests", "bench")
    for p in (REPO / folder).rglob("*")
    if p.is_file() and p.suffix in {".py", ".md", ".toml", ".txt", ".json"}
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w/.$-])((?:docs|bench|src|tests)/[\w./-]*[\w/])")
MIN_MARKDOWN_FILES = 7  # README.md, bench/README.md and the pages of docs/
MIN_LINKS = 20


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for _, line in prose_lines(path):
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def prose_without_code(path: Path) -> list[tuple[int, str]]:
    """Lines outside fenced blocks, with their inline code spans blanked out."""
    return [(n, re.sub(r"`[^`\n]+`", "``", text)) for n, text in prose_lines(path)]


def test_the_checks_below_see_the_docs() -> None:
    names = {p.relative_to(REPO).as_posix() for p in MARKDOWN}
    assert {"README.md", "docs/architecture.md", "docs/search.md"} <= names
    assert len(MARKDOWN) >= MIN_MARKDOWN_FILES
    links = [m for p in MARKDOWN for _, t in prose_without_code(p) for m in LINK.findall(t)]
    assert len(links) >= MIN_LINKS
    assert len(SOURCES) > 100


def test_nothing_cites_notes_kept_outside_the_repository() -> None:
    cited = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in (*MARKDOWN, *SOURCES)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert cited == []


def test_relative_links_in_the_docs_point_at_files_and_headings_that_exist() -> None:
    broken = []
    for path in MARKDOWN:
        for n, text in prose_without_code(path):
            for target in LINK.findall(text):
                if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(REPO)}:{n}: {target}"
                if not linked.is_relative_to(REPO) or not linked.exists():
                    broken.append(f"{where} (no such file in the repository)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{where} (no such heading in {linked.name})")
    assert broken == []


def test_repository_paths_named_in_the_docs_exist() -> None:
    """``docs/catalog.md``, ``src/tidings/scan/inventory.py``: named, so they must be there."""
    missing = [
        f"{path.relative_to(REPO)}:{n}: {name}"
        for path in MARKDOWN
        for n, text in prose_lines(path)
        for name in REPO_PATH.findall(text)
        if not (REPO / name).exists()
    ]
    assert missing == []
