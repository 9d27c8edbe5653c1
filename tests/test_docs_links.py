"""Documentation: every relative link and image in README.md, docs/ and models/areya-fer/*.md points at a file that
exists (and a ``#fragment`` at a heading of the Markdown page it names); README.md stays short; the user
documentation (README.md and docs/ outside docs/experiments/) names no issue numbers and no uncommitted runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
EXPERIMENTS = DOCS / "experiments"
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+).+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=[\"']([^\"']+)[\"']", re.IGNORECASE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")
ISSUE_REFERENCE = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)
UNCOMMITTED_RUN = re.compile(r"\bruns/v\d+")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md")), *sorted((REPO / "models" / "areya-fer").glob("*.md"))]


def user_doc_files() -> list[Path]:
    return [README, *(p for p in sorted(DOCS.rglob("*.md")) if EXPERIMENTS not in p.parents)]


def prose_lines(text: str, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans removed unless keep_code."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * 3
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        lines.append((number, line if keep_code else INLINE_CODE.sub("", line)))
    return lines


def link_targets(text: str) -> list[tuple[int, str]]:
    targets = []
    for number, line in prose_lines(text):
        for pattern in (INLINE_LINK, HTML_LINK):
            targets += [(number, m.group(1)) for m in pattern.finditer(line)]
        if m := REFERENCE_LINK.match(line):
            targets.append((number, m.group(1)))
    return targets


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), keep_code=True):
        if m := HEADING.match(line):
            base = slug(m.group(2).replace("`", ""))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_pages_exist() -> None:
    names = {relative(p) for p in doc_files()}
    topics = ("operations", "configuration", "cameras", "detection", "models", "alerts", "dashboard", "integrations")
    for page in (*topics, "security", "development"):
        assert f"docs/{page}.md" in names
    assert "models/areya-fer/selection.md" in names and (DOCS / "central-station.png").is_file()


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in link_targets(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        where = f"{relative(page)}:{number}: {target}"
        if not destination.exists():
            broken.append(f"{where} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{where} (no heading #{fragment} in {relative(destination)})")
    assert not broken, "broken documentation links:\n" + "\n".join(broken)


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in link_targets(README.read_text("utf-8"))}
    missing = [relative(p) for p in sorted(DOCS.rglob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md's Documentation list lacks {missing}"


def test_readme_is_short() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"


@pytest.mark.parametrize("page", user_doc_files(), ids=relative)
def test_user_docs_name_no_issues_or_uncommitted_runs(page: Path) -> None:
    found = [
        f"{relative(page)}:{number}: {m.group(0)!r}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        for pattern in (ISSUE_REFERENCE, UNCOMMITTED_RUN)
        for m in pattern.finditer(line)
    ]
    assert not found, "issue numbers and runs/ paths belong in docs/experiments/ or selection.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See [a](docs/a.md#x) and ![b](img.png 'title').", ["docs/a.md#x", "img.png"]),
        ("`[not](a-link.md)` but [yes](b.md)", ["b.md"]),
        ("```\n[not](in-code.md)\n```\n[after](c.md)", ["c.md"]),
        ('[ref]: ../d.md\n<img src="e.png">', ["../d.md", "e.png"]),
    ],
)
def test_link_targets(text: str, expected: list[str]) -> None:
    assert [t for _, t in link_targets(text)] == expected


def test_slug_matches_github() -> None:
    assert slug("Each face's own box") == "each-faces-own-box"
    assert slug("Lifecycle: acknowledge, resolve, snooze") == "lifecycle-acknowledge-resolve-snooze"
    assert slug("HL7 v2 ADT in, FHIR R4 out") == "hl7-v2-adt-in-fhir-r4-out"
    assert "areya-predict" in anchors(DOCS / "detection.md")  # a heading in backticks


def test_issue_pattern() -> None:
    assert ISSUE_REFERENCE.search("where issue 15 stands") and ISSUE_REFERENCE.search("see #27")
    assert not ISSUE_REFERENCE.search("the issue's targets, PV1-3, `&#39;`, page.md#section-2")
