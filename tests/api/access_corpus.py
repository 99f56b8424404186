"""A sources folder with a public part, ``hr/``, ``ledelse/``, an unmatched file and an
``access.toml``: shared by the API access tests and the end-to-end access test."""

from __future__ import annotations

from pathlib import Path

RULES = """
[[rule]]
path = "hr/**"
groups = ["hr"]

[[rule]]
path = "ledelse/**"
groups = ["ledelse"]

[[rule]]
path = "public/**"
groups = ["*"]
"""

FILES = {
    "public/kantine.txt": "Kantina er åpen fra klokka åtte til fire. Kaffe er gratis i kantina.",
    "public/ferie.txt": "Ferie skal avtales med nærmeste leder innen første mai hvert år.",
    "hr/lonn.txt": "Lønnsrammen Zebrafink gir alle ansatte et tillegg på fire prosent.",
    "hr/personalsak.pdf.txt": "Personalsaken Kolibri om oppsigelse behandles konfidensielt.",
    "ledelse/budsjett.txt": "Styret vedtok budsjettkuttet Pelikan på tolv millioner kroner.",
    "ledelse/omorganisering.md": "# Omorganisering\n\nAvdeling Flamingo flyttes til Bergen.",
    "annet/ukjent.txt": "Dokumentet Struts har ingen regel og er skjult for alle.",
}

#: A question per hidden folder, and the file that answers it.
QUESTIONS = {
    "hr": ("Hva er lønnsrammen Zebrafink?", "hr/lonn.txt"),
    "ledelse": ("Hva vedtok styret om budsjettkuttet Pelikan?", "ledelse/budsjett.txt"),
}
PUBLIC = {p for p in FILES if p.startswith("public/")}


def visible(groups: set[str]) -> set[str]:
    """The files a caller of ``groups`` may see under RULES."""
    return PUBLIC | {p for p in FILES if p.split("/")[0] in groups}


def write_access_sources(root: Path) -> Path:
    """Write the folder (with its access.toml) under ``root``; returns it."""
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n", encoding="utf-8")
    (root / "access.toml").write_text(RULES, encoding="utf-8")
    return root
