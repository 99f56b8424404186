"""Build the format corpus: each NorQuAD text as one of PDF, DOCX, ODT, HTML, Markdown, text.

    python -m eval.formats.make --out /tmp/formats        # about a minute (LibreOffice)

The texts are given formats round robin by sorted name (pdf, docx, odt, html, md, txt, pdf,
...), so the corpus and its figures are the same on every machine. What each format gets:

- PDF: a Word file with a running header ("KS — Testkorpus") and a "Side N" footer, in a large
  font with wide spacing so that every text runs over several pages, printed by LibreOffice;
- DOCX: the text's first line as a heading, then its paragraphs; ODT: the same, converted;
- HTML: an intranet page, the text in ``<main>`` between a cookie banner, ``<nav>``,
  ``<aside>`` and ``<footer>`` (text that must not be indexed: ``BOILERPLATE``);
- Markdown: ``# first line`` and the paragraphs; text: the file as it is.

``OUT/gold.jsonl`` is the NorQuAD gold file with each source renamed (``answer_start`` kept
for text files only: elsewhere the offsets differ). ``OUT/corpus.json``, written last,
records the inputs' digests; a later run with the same inputs does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python eval/formats/make.py` as well as `-m eval.formats.make`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import docx
from docx.shared import Cm, Pt

from tests.support.documents import _page_field, convert

ROOT = Path(__file__).resolve().parents[2]
NORQUAD = ROOT.parent / "shared" / "norquad-validation"
FORMATS = ("pdf", "docx", "odt", "html", "md", "txt")
#: Bump when any generated file changes: a corpus built by another version is rebuilt.
VERSION = 1
HEADER = "KS — Testkorpus"
FOOTER = "Side"  # followed by the page number
#: Text around the HTML pages' main content: none of it may reach a passage.
BOILERPLATE = (
    "Vi bruker informasjonskapsler for å gi deg en bedre opplevelse av intranettet",
    "Godta alle",
    "Min side for ansatte",
    "Skjemaer og rutiner",
    "Relaterte saker på intranettet",
    "Ny turnusordning fra januar",
    "Kommunens intranett, drift: IT-avdelingen",
)
_PAGE = """<!DOCTYPE html>
<html lang="nb">
<head><meta charset="utf-8"><title>{title}</title>
<style>.cookie-banner {{position: fixed; bottom: 0}}</style></head>
<body>
<div class="cookie-banner" id="cookie-consent" role="dialog">
<p>Vi bruker informasjonskapsler for å gi deg en bedre opplevelse av intranettet.</p>
<button>Godta alle</button> <button>Bare nødvendige</button>
</div>
<header><a class="logo" href="/">Intranettet</a>
<nav aria-label="Hovedmeny"><ul>
<li><a href="/">Forside</a></li><li><a href="/ansatt">Min side for ansatte</a></li>
<li><a href="/skjema">Skjemaer og rutiner</a></li><li><a href="/kontakt">Kontakt</a></li>
</ul></nav></header>
<main><article>
<h1>{title}</h1>
{body}
</article></main>
<aside><h2>Relaterte saker på intranettet</h2>
<ul><li><a href="/sak/1">Ny turnusordning fra januar</a></li>
<li><a href="/sak/2">Husk å registrere ferie</a></li></ul></aside>
<footer><p>Kommunens intranett, drift: IT-avdelingen. Sist oppdatert 1. mars.</p></footer>
</body>
</html>
"""


@dataclass(frozen=True)
class Text:
    """One NorQuAD text: its first line is its title, the other lines its paragraphs."""

    name: str
    title: str
    paragraphs: tuple[str, ...]


def read_text(path: Path) -> Text:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    filled = [line for line in lines if line]
    return Text(path.name, filled[0], tuple(filled[1:]))


def formats(names: list[str]) -> dict[str, str]:
    """Each file name's format: round robin over FORMATS, by sorted name."""
    return {name: FORMATS[i % len(FORMATS)] for i, name in enumerate(sorted(names))}


def renamed(name: str, fmt: str) -> str:
    return str(Path(name).with_suffix("." + fmt))


def word_file(text: Text, path: Path, running: bool) -> Path:
    """A Word file: heading and paragraphs; ``running`` adds the header, the footer and the
    large print that spreads a NorQuAD text (about 2,000 characters) over 2-3 pages."""
    document = docx.Document()
    document.core_properties.title = text.title
    if running:
        section = document.sections[0]
        for side in ("top_margin", "bottom_margin", "left_margin", "right_margin"):
            setattr(section, side, Cm(3.5))
        section.header.paragraphs[0].text = HEADER
        footer = section.footer.paragraphs[0]
        footer.text = f"{FOOTER} "
        _page_field(footer)
        normal = document.styles["Normal"]
        normal.font.size = Pt(15)
        normal.paragraph_format.line_spacing = 2.0
    document.add_heading(text.title, 1)
    for paragraph in text.paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def web_page(text: Text) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in text.paragraphs)
    return _PAGE.format(title=html.escape(text.title), body=body)


def markdown(text: Text) -> str:
    return "\n\n".join([f"# {text.title}", *text.paragraphs]) + "\n"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _record(src: Path) -> dict:
    """What the corpus is made from: compared with OUT/corpus.json to skip a rebuild."""
    texts = sorted((src / "sources").glob("*.txt"))
    return {"version": VERSION, "inputs": _digest([src / "gold.jsonl", *texts])}


def is_complete(out: Path, record: dict) -> bool:
    """OUT holds a corpus made from these inputs, every file of it present."""
    try:
        made = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = made.get("files", {})
    return {k: made.get(k) for k in record} == record and all(
        (out / "sources" / name).is_file() for name in files
    )


def _gold(src: Path, names: dict[str, str]) -> list[str]:
    """The gold lines with each source renamed; a question on a missing text is an error."""
    lines = []
    for n, line in enumerate((src / "gold.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("source") not in names:
            raise SystemExit(f"{src / 'gold.jsonl'}:{n}: no text {row.get('source')!r}")
        row["source"] = names[row["source"]]
        if not row["source"].endswith(".txt"):
            row.pop("answer_start", None)
        lines.append(json.dumps(row, ensure_ascii=False))
    return lines


def _write(paths: list[Path], fmt_of: dict[str, str], out: Path, work: Path) -> None:
    """Every file into ``out``; the Word files LibreOffice converts go through ``work``."""
    to_convert: dict[str, list[Path]] = {"pdf": [], "odt": []}
    for path in paths:
        text, fmt = read_text(path), fmt_of[path.name]
        target = out / renamed(text.name, fmt)
        if fmt in to_convert:
            folder = work / fmt
            folder.mkdir(exist_ok=True)
            word = word_file(text, folder / renamed(text.name, "docx"), running=fmt == "pdf")
            to_convert[fmt].append(word)
        elif fmt == "docx":
            word_file(text, target, running=False)
        elif fmt == "html":
            target.write_text(web_page(text), encoding="utf-8")
        elif fmt == "md":
            target.write_text(markdown(text), encoding="utf-8")
        else:
            shutil.copyfile(path, target)
    for fmt, words in to_convert.items():
        if words:
            for made in convert(words, fmt, work / f"{fmt}-out", work / "profile"):
                shutil.move(made, out / made.name)


def build(src: Path, out: Path, force: bool = False) -> dict:
    """Make the corpus from ``src`` (``sources/*.txt`` + ``gold.jsonl``) in ``out``."""
    record = _record(src)
    if not force and is_complete(out, record):
        return json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    paths = sorted((src / "sources").glob("*.txt"))
    fmt_of = formats([p.name for p in paths])
    shutil.rmtree(out / "sources", ignore_errors=True)
    (out / "corpus.json").unlink(missing_ok=True)
    (out / "sources").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="qa-formats-") as work:
        _write(paths, fmt_of, out / "sources", Path(work))
    names = {name: renamed(name, fmt) for name, fmt in fmt_of.items()}
    (out / "gold.jsonl").write_text("\n".join(_gold(src, names)) + "\n", encoding="utf-8")
    made = record | {"files": {names[n]: fmt for n, fmt in sorted(fmt_of.items())}}
    (out / "corpus.json").write_text(json.dumps(made, indent=1, ensure_ascii=False) + "\n")
    return made


def cut(src: Path, n: int, dest: Path) -> Path:
    """A NorQuAD-shaped folder in ``dest`` with the first ``n`` texts and their questions
    (for quick runs and tests: ``n`` = 6 gives one file of each format)."""
    names = sorted(p.name for p in (src / "sources").glob("*.txt"))[:n]
    (dest / "sources").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / "sources" / name, dest / "sources" / name)
    gold = (src / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for line in gold if line.strip() and json.loads(line)["source"] in names]
    (dest / "gold.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for sources/ and gold.jsonl")
    p.add_argument("--src", type=Path, default=NORQUAD, help=f"NorQuAD folder [{NORQUAD}]")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = p.parse_args(argv)
    if not (args.src / "gold.jsonl").is_file() or not (args.src / "sources").is_dir():
        p.error(f"{args.src} has no sources/ and gold.jsonl")
    if not shutil.which("soffice"):
        p.error("soffice not found: install LibreOffice (scripts/setup.sh)")
    made = build(args.src, args.out, args.force)
    counts = {f: sum(1 for x in made["files"].values() if x == f) for f in FORMATS}
    print(f"{args.out}: {len(made['files'])} files ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
