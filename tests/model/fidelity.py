"""Texts the converted model is checked on: generated Norwegian (bokmål, nynorsk) and English
with typographic noise, and slices of real documents. Deterministic (a fixed seed)."""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.corpus import SHARED

SITES = ["regjeringen", "nav", "skatteetaten"]
PLACES = ["Tromsø", "Ålesund", "Bærum", "Øystre Slidre", "Sør-Varanger", "Bodø", "Vågå"]
NB = [
    "Søknadsfristen for tilskudd er {d}. mars {y}.",
    "Kommunen har {n} innbyggere og et budsjett på {money} kroner.",
    "Hvordan søker jeg om økonomisk sosialhjelp i {place}?",
    "Statsforvalteren behandler klager på vedtak etter forvaltningsloven § {n}.",
    "Barnehageplass tildeles etter opptaksreglene; søk innen 1. mars.",
    "Reglene for skatt på formue endres fra år til år, så sjekk satsene før du betaler.",
    "Ærlig talt er det få som vet at bøter kan gjøres om til samfunnsstraff.",
]
NN = [
    "Kommunen har ansvar for å gje innbyggjarane gode tenester.",
    "Søknadsfristen er {d}. mai, og du må leggje ved dokumentasjon.",
    "Kva for ein rett har eg til å klage på vedtaket frå {place}?",
    "Fylkeskommunen skal sikre at elevane får opplæring i samsvar med læreplanen.",
    "Ho budde i ei lita bygd ved fjorden, der vegen var stengd heile vinteren.",
    "Dei tilsette må søkje om permisjon minst {n} dagar før.",
]
EN = [
    "The municipality is responsible for primary schools and kindergartens.",
    "How do I apply for a building permit in {place}?",
    "The deadline for applications is {d} March {y}.",
    "Read more at {url} or call {phone} between 08:00 and 15:30.",
    "Public-sector documents must be archived for at least {n} years.",
    "Isn't it odd that the form's last field—the signature—is optional?",
]
NOISE = [
    "«sitat»",
    "“quotes”",
    "‘single’",
    "„low“",
    " – ",
    " — ",
    "…",
    "\t",
    "\n",
    "\r\n",
    "\n\n\t",
    "   ",
    "\xa0",
    "\u2009",
    "\u200b",
    "\xad",
    "\x01",
    "\x07",
    "\x1b",
    "\x7f",
    "\u2028",
    "½",
    "²",
    "ﬁ",
    "Ｆｕｌｌ",
    "№ 5",
    "™",
    "€ 12,50",
    "§ 12-3",
    "50 %",
    "1 234,56",
    "https://www.nav.no/no/person/arbeid?x=1&y=2",
    "post@kommune.no",
    "😀",
    "🇳🇴",
    "👍🏽",
    "a\u030a",
    "e\u0301",
    "\xa0\u0301",
    "\u2581",
    "ǅ",
    "\u3000",
    "Ⅻ",
    "𝐀𝐁𝐂",
    "𪛖𪛗",
    "ᚠᚢᚦ",
    "\ue000",
    "Ω",
    "Å",
    "ﾊﾟ",
    "가\u1161",
    "\U0001f1f3\U0001f1f4",
    "❤️",
    "x\u200dy",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        d=rng.randint(1, 28),
        y=rng.randint(1990, 2030),
        n=rng.randint(2, 99999),
        money=f"{rng.randint(1, 999)} {rng.randint(0, 999):03d} {rng.randint(0, 999):03d}",
        place=rng.choice(PLACES),
        url=f"https://www.{rng.choice(SITES)}.no/side/{rng.randint(1, 9999)}?a=1&b=2",
        phone="+47 " + " ".join(str(rng.randint(10, 99)) for _ in range(4)),
    )


def _synthetic(rng: random.Random, pools: list[list[str]], noise: float, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = _fill(rng.choice(rng.choice(pools)), rng).split(" ")
        out.append(" ".join(w + (rng.choice(NOISE) if rng.random() < noise else "") for w in words))
    return rng.choice([" ", "\n", "  ", "\t"]).join(out)


def _slices(files: list[Path], rng: random.Random, n: int, sizes: tuple[int, int]) -> list[str]:
    texts = [f.read_text(encoding="utf-8") for f in files]
    out = []
    for _ in range(n):
        text = rng.choice(texts)
        size = rng.randint(*sizes)
        start = rng.randrange(max(1, len(text) - size))
        out.append(text[start : start + size])
    return out


def fidelity_texts() -> list[str]:
    """Deterministic: 231 generated texts plus 64 slices of real documents, NUL-free."""
    rng = random.Random(20240607)
    texts = [_synthetic(rng, [NB], 0.05, rng.randint(1, 6)) for _ in range(60)]
    texts += [_synthetic(rng, [NN], 0.05, rng.randint(1, 6)) for _ in range(40)]
    texts += [_synthetic(rng, [EN], 0.05, rng.randint(1, 6)) for _ in range(40)]
    texts += [_synthetic(rng, [NB, NN, EN], 0.1, rng.randint(2, 8)) for _ in range(40)]
    texts += [_synthetic(rng, [NB, NN, EN], 0.6, rng.randint(1, 5)) for _ in range(40)]
    texts += ["", " ", "\n", "\x01\x02", "hei", "  leading and trailing  ", "A" * 600, "1" * 300]
    texts += ["Innhold\n1 Innledning " + "." * 60 + " 5\n2 Bakgrunn " + "." * 63 + " 7"]
    texts += ["\t".join(NOISE), "".join(NOISE), " ".join(NOISE[::-1])]
    seeds = sorted((SHARED / "seeds").glob("*.txt"))
    norquad = sorted((SHARED / "norquad-validation" / "sources").glob("*.txt"))
    texts += _slices(seeds, rng, 20, (30, 1000)) + _slices(norquad, rng, 40, (30, 1000))
    texts += _slices(seeds + norquad, rng, 4, (2400, 2400))  # cut to 512 tokens by the fixture
    return texts
