"""Every file the code's docstrings and comments, the README and the docs name exists in the repository, and no text
cites the papers by a private file name ("seed 000"): a user can read every rule the code says it follows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["benchmark", "tests", "studies", "scripts", "docs"]
TEXTS = ["README.md", "pyproject.toml", ".ci/run"]
# a path into one of the repository's folders, with a known extension (out/, folder/... are placeholders, not files)
PATH = re.compile(
    r"(?<![\w./<{$-])((?:\.\./)*(?:benchmark|tests|studies|scripts|docs|reports|\.ci)/(?:[\w.-]+/)*[\w.-]+"
    r"\.(?:py|md|sh|toml|csv|txt|tex|html|png|json|jsonl))(?![\w/])"
)
DOCUMENT = re.compile(r"(?<![\w./-])([A-Z][A-Z_]+\.md)\b")  # METHODS.md, README.md
PRIVATE = re.compile(r"\b[Ss]eeds? 00\d\b")


def texts() -> list[Path]:
    files = [ROOT / name for name in TEXTS if (ROOT / name).exists()]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".sh") and p.is_file()]
    return sorted(files)


def exists(reference: str, where: Path) -> bool:
    """Whether ``reference`` names a file of the repository, from its root or from the referring file's folder."""
    candidates = [ROOT / reference, where.parent / reference]
    return any(path.exists() for path in candidates)


def missing_references() -> list[str]:
    missing = []
    for path in texts():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            for reference in PATH.findall(line):
                if not exists(reference, path):
                    missing.append(f"{where} names {reference}")
            for document in DOCUMENT.findall(line):
                if not any((ROOT / folder / document).exists() for folder in ("", "docs", "tests", "studies")):
                    missing.append(f"{where} names {document}")
            if PRIVATE.search(line):
                missing.append(f"{where} cites a paper by a private name: {PRIVATE.search(line).group(0)}")
    return missing


def test_every_named_file_exists_and_papers_are_cited_by_name():
    assert missing_references() == []


def test_the_check_finds_a_missing_file(tmp_path):
    found = PATH.findall("see docs/nosuch.md and benchmark/core/errors.py, not out/x.md")
    assert found == ["docs/nosuch.md", "benchmark/core/errors.py"]
    assert not exists("docs/nosuch.md", ROOT / "README.md") and exists("benchmark/core/errors.py", ROOT / "README.md")
    assert DOCUMENT.findall("as METHODS.md says") == ["METHODS.md"] and PRIVATE.search("seed 000 §4.4")
