"""Reading the examples out of README.md and docs/*.md, exactly as the docs mark them.

The marking conventions (docs/architecture.md, "Documentation"):

- a fenced block with info string ``toml`` is either an update manifest (it has a top-level
  ``schema`` key) or a device inventory file; no third kind exists;
- a fenced block with info string ``criteria`` holds one valid criteria string per line;
- a table whose header starts ``| Criteria | Finds |`` lists searches that find something
  (the first cell is one code span); ``| Criteria | Message |`` lists refused criteria and
  the exact message (a message ending in ``...`` is a prefix);
- a fenced block with info string ``python`` in README.md runs as written.

Nothing here decides what an example means; the tests do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

_FENCE = re.compile(r"^(`{3,})(.*)$")
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_MULTILINE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_ROW_CELLS = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its info string and its text."""

    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


@dataclass(frozen=True)
class Row:
    """One row of a criteria table: its first code span and its second cell."""

    path: Path
    line: int
    claim: str  # the second header cell: "Finds" or "Message"
    criteria: str
    second: str  # the second cell, raw

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, in order.

    Raises:
        AssertionError: a fence is never closed (the rest of the file would be swallowed).
    """
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        assert end is not None, f"{path.relative_to(REPO)}:{i + 1}: unclosed code fence"
        blocks.append(Block(path, i + 1, info, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return blocks


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, text) of every line outside fenced blocks."""
    inside: set[int] = set()
    for block in fenced_blocks(path):
        inside.update(range(block.line, block.line + block.text.count("\n") + 2))
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(n, text) for n, text in enumerate(lines, 1) if n not in inside]


def code_spans(text: str) -> list[str]:
    """The inline code spans of one line of prose."""
    return _CODE_SPAN.findall(text)


def prose_code_spans(path: Path) -> list[tuple[int, str]]:
    """(1-based line where it starts, text) of every inline code span outside fenced blocks.

    A span may run over a line break (markdown allows it); the break reads as a space.
    """
    numbered = prose_lines(path)
    text = "\n".join(line for _, line in numbered)
    starts = [0]
    for _, line in numbered:
        starts.append(starts[-1] + len(line) + 1)
    spans = []
    for match in _MULTILINE_SPAN.finditer(text):
        index = next(i for i in range(len(numbered)) if starts[i + 1] > match.start())
        spans.append((numbered[index][0], " ".join(match.group(1).split("\n"))))
    return spans


def criteria_rows(path: Path) -> list[Row]:
    """Every body row of the tables headed ``| Criteria | ... |``."""
    rows: list[Row] = []
    claim: str | None = None
    for number, text in prose_lines(path):
        if not text.startswith("|"):
            claim = None
            continue
        cells = [c.strip() for c in _ROW_CELLS.split(text.strip())[1:-1]]
        if claim is None:
            claim = cells[1] if len(cells) >= 2 and cells[0] == "Criteria" else ""
            continue
        if not claim or set(cells[0]) <= set("-: "):
            continue
        spans = code_spans(cells[0])
        assert len(spans) == 1 and cells[0] == f"`{spans[0]}`", (
            f"{path.relative_to(REPO)}:{number}: a criteria cell is one code span, got {cells[0]}"
        )
        rows.append(Row(path, number, claim, spans[0], cells[1]))
    return rows


def all_blocks(info: str) -> list[Block]:
    """Every fenced block with this info string in README.md and docs/*.md."""
    return [b for path in DOC_FILES for b in fenced_blocks(path) if b.info == info]


def all_criteria_rows() -> list[Row]:
    """Every criteria table row in README.md and docs/*.md."""
    return [row for path in DOC_FILES for row in criteria_rows(path)]
