"""The documentation holds together: README.md is short and starts with the two commands a new user
needs, every relative link in README.md and docs/*.md leads to a file that exists and, with an
``#anchor``, to a heading of that file (MkDocs' slug rules, which GitHub's agree with for these
headings), docs pages link only inside docs/ (what MkDocs can build), and every docs page is in
mkdocs.yml's nav and in the README's Documentation list. ``mkdocs build --strict`` (``make docs``,
.ci/run) checks the rendered site; these checks run with the test suite, without the docs tools.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
API_OBJECT = re.compile(r"^:::\s+(\S+)")


def markdown_files() -> list[Path]:
    """README.md and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of ``path`` outside fenced code blocks, inline code spans blanked."""
    lines, inside = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            lines.append((number, INLINE_CODE.sub("``", line)))
    return lines


def slugify(heading: str) -> str:
    """The id MkDocs gives a heading (Python-Markdown's toc slugify after rendering inline markup)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", text)  # emphasis: its text
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    """Every anchor a link into ``path`` may name: heading ids (a repeated one gets _1, _2 ...), and on
    a mkdocstrings page the ids of the documented objects and their members."""
    ids: set[str] = set()
    counts: dict[str, int] = {}
    api_roots = []
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            slug = slugify(match.group(2))
            if slug in counts:
                counts[slug] += 1
                slug = f"{slug}_{counts[slug]}"
            else:
                counts[slug] = 0
            ids.add(slug)
        api = API_OBJECT.match(line)
        if api:
            api_roots.append(api.group(1))
    return ids | {f"api-root:{root}" for root in api_roots}


def anchor_exists(anchor: str, path: Path) -> bool:
    """``anchor`` is a heading of ``path``, or an object documented there by ``::: module.path``."""
    found = anchors(path)
    if anchor in found:
        return True
    roots = [a.split(":", 1)[1] for a in found if a.startswith("api-root:")]
    return any(anchor == root or anchor.startswith(root + ".") for root in roots)


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in ``path`` that is not a URL."""
    found = []
    for number, line in prose_lines(path):
        for match in LINK.finditer(line):
            target = match.group(1)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                found.append((number, target))
    return found


def test_slugify_follows_mkdocs_rules():
    assert slugify("1:N identification at scale") == "1n-identification-at-scale"
    assert slugify("Liveness: passive presentation attack detection (PAD)") == \
        "liveness-passive-presentation-attack-detection-pad"
    assert slugify("Privacy: encrypted templates, cancelable templates, erasure, audit log, out-of-domain check") == \
        "privacy-encrypted-templates-cancelable-templates-erasure-audit-log-out-of-domain-check"
    assert slugify("Metrics (ISO/IEC 30107-3)") == "metrics-isoiec-30107-3"
    assert slugify("Against `face_recognition` **now**") == "against-face_recognition-now"
    assert slugify("Ünïcode — dash") == "unicode-dash"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines: move the long part into a docs/ page"


def test_readme_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "README.md must open with its title"
    body = [line for line in lines[1:] if line.strip()]
    assert FENCE.match(body[0]), f"README.md: the first thing after the title must be the commands block, not {body[0]!r}"
    block = body[1:body.index(next(line for line in body[1:] if FENCE.match(line)))]
    commands = [line.split("#")[0].strip() for line in block]
    assert commands == ["make demo", "make test"], f"README.md's first block is {block}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    broken = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            broken.append(f"{where}: no file {file_part}")
        elif path.parent == DOCS and ROOT / "docs" not in [dest, *dest.parents]:
            broken.append(f"{where}: outside docs/, which the docs site cannot link to")
        elif anchor and dest.suffix == ".md" and not anchor_exists(anchor, dest):
            broken.append(f"{where}: no heading with id '{anchor}' in {dest.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_finds_a_broken_link(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n## A section: here\n[ok](#a-section-here) [bad](#nowhere) `[code](#x)`\n"
                    "```\n[fenced](#y)\n```\n[file](missing.md) [web](https://example.org)\n")
    assert relative_links(page) == [(3, "#a-section-here"), (3, "#nowhere"), (7, "missing.md")]
    assert anchor_exists("a-section-here", page) and not anchor_exists("nowhere", page)


def test_every_docs_page_is_in_the_nav_and_in_the_readme():
    pages = {p.name for p in DOCS.glob("*.md")}
    nav = set(re.findall(r"^\s*-\s+(?:.*?:\s+)?([\w.-]+\.md)\s*$", MKDOCS_YML.read_text(encoding="utf-8"), re.M))
    assert pages == nav, f"docs pages not in mkdocs.yml's nav: {sorted(pages - nav)}; nav pages missing: {sorted(nav - pages)}"
    readme = README.read_text(encoding="utf-8")
    assert "\n## Documentation\n" in readme, "README.md needs its Documentation list"
    listed = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", readme.split("\n## Documentation\n", 1)[1]))
    assert pages - {"index.md"} <= listed, f"docs pages missing from README's Documentation list: {sorted(pages - {'index.md'} - listed)}"


def test_docs_home_takes_the_install_text_from_the_readme():
    readme = README.read_text(encoding="utf-8")
    start, end = "<!-- --8<-- [start:install] -->", "<!-- --8<-- [end:install] -->"
    assert readme.count(start) == 1 and readme.count(end) == 1 and readme.index(start) < readme.index(end), \
        "README.md's install text must stay between the snippet markers docs/index.md includes"
    install = readme[readme.index(start) + len(start):readme.index(end)]
    assert "pip install" in install and not LINK.search(install), \
        "the install text is shown in README.md and docs/index.md: plain text, no relative links"
    assert '--8<-- "README.md:install"' in (DOCS / "index.md").read_text(encoding="utf-8")
