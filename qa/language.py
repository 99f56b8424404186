"""Which language a text is in (lingua): reported with each answer, and used by fusion."""

from __future__ import annotations

from functools import lru_cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

_LANGS = [
    Language.BOKMAL,
    Language.NYNORSK,
    Language.ENGLISH,
    Language.DANISH,
    Language.SWEDISH,
    Language.GERMAN,
]
#: Languages close enough to Norwegian that its stemmer and vocabulary still match words.
NORDIC = frozenset({"nb", "nn", "da", "sv"})


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_LANGS).build()


def detect(text: str) -> str:
    """ISO 639-1 code of ``text`` ("nb", "nn", "en"...), or "und" when it cannot tell."""
    lang = _detector().detect_language_of(text[:2000])
    if lang is None:
        return "und"
    return lang.iso_code_639_1.name.lower()


def confidence(text: str, code: str) -> float:
    """How sure lingua is that ``text`` is in language ``code`` (0..1)."""
    for lang in _LANGS:
        if lang.iso_code_639_1.name.lower() == code:
            return _detector().compute_language_confidence(text[:2000], lang)
    return 0.0
