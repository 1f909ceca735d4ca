"""The settings localresearch understands: one frozen dataclass per config.toml section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def setting(default: Any, doc: str) -> Any:
    """Declare a setting with its default and the one line shown in docs and the example file."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class ServerConfig:
    """[server]: where the daemon listens and what it accepts from clients."""

    enabled: bool = setting(
        True, "Serve the HTTP API; false runs only the heartbeat and watcher (CLI needs HTTP)."
    )
    port: int = setting(31327, "TCP port of the daemon.")
    bind: str = setting("127.0.0.1", "Address to bind; keep it on loopback.")
    allow_remote: bool = setting(
        False, "Must be true to bind a non-loopback address (remote clients then need a key)."
    )
    allowed_hosts: list[str] = setting(
        [], "Extra Host header names accepted besides loopback ones (DNS-rebinding guard)."
    )
    allowed_origins: list[str] = setting(
        [], "Extra browser Origins allowed to make state-changing requests."
    )
    max_body_bytes: int = setting(1_048_576, "Largest request body accepted (413 beyond).")
    shutdown_timeout: float = setting(10.0, "Seconds `daemon stop` waits before SIGKILL.")
    idle_timeout: float = setting(
        15.0,
        "Seconds a connection may stay without a complete request (slow or idle clients).",
    )
    body_timeout: float = setting(30.0, "Seconds to receive a request body (408 beyond).")
    log_level: str = setting("info", "Daemon log level: debug, info, warning or error.")
    log_max_bytes: int = setting(5_242_880, "Rotate the daemon log at this size.")
    log_backups: int = setting(3, "How many rotated logs to keep.")
    uvloop: bool = setting(
        True, "Run the daemon on uvloop where it is installed (faster); false: asyncio's own loop."
    )


@dataclass(frozen=True)
class LLMConfig:
    """[llm]: the model that writes answers, and how long to wait for it."""

    provider: str = setting(
        "builtin", "builtin (offline, no model), openai, ollama, anthropic or llamacpp."
    )
    model: str = setting("", "Model name for the provider (empty: the provider's default).")
    base_url: str = setting("", "Server URL for openai/ollama/anthropic (empty: the default).")
    api_key_env: str = setting(
        "", "Name of the environment variable holding the API key (never the key itself)."
    )
    model_path: str = setting("", "GGUF file for the llamacpp provider.")
    temperature: float = setting(0.2, "Sampling temperature.")
    max_tokens: int = setting(1024, "Most tokens a reply may have.")
    connect_timeout: float = setting(10.0, "Seconds to connect to the provider.")
    first_token_timeout: float = setting(
        120.0, "Seconds to wait for the first token (cold local models load slowly)."
    )
    idle_timeout: float = setting(60.0, "Seconds of silence mid-stream before giving up.")
    max_retries: int = setting(3, "Retries on 429/503 and connection errors, with backoff.")
    context_tokens: int = setting(
        0,
        "Tokens the model's context holds (0: ask the server: a llama.cpp server tells it in"
        " /props or /v1/models; else unknown). At 8192 or less, an answer that found passages"
        " sends a compact prompt: a short instruction, the passages beside the question, no tool"
        " definitions.",
    )


@dataclass(frozen=True)
class EmbeddingsConfig:
    """[memory.embeddings]: vectors for semantic search, off unless a provider is set."""

    provider: str = setting(
        "none",
        "none, onnx (recommended: research memory embeddings install bge-small), local"
        " (sentence-transformers, torch), ollama or openai.",
    )
    model: str = setting(
        "", "Embedding model (onnx: model folder; local: name or folder, default all-MiniLM-L6-v2)."
    )
    base_url: str = setting("", "Embeddings endpoint base URL for ollama/openai.")
    api_key_env: str = setting(
        "", "Name of the environment variable holding the embeddings API key (never the key)."
    )
    batch_size: int = setting(32, "Chunks per embeddings request while indexing.")
    vector_weight: float = setting(
        0.45, "Share of vector similarity in the fused score (0-1; BM25 has the rest)."
    )
    similarity_floor: float = setting(
        0.25, "Cosine similarity that counts as none in fusion (tuned for all-MiniLM-L6-v2)."
    )
    threads: int = setting(
        0, "Batches the onnx provider embeds at once, one thread each (0: one per core)."
    )


@dataclass(frozen=True)
class MemoryConfig:
    """[memory]: which notes are indexed, and how they are cut and ranked."""

    workspace: str = setting("", "Workspace folder (empty: <data dir>/workspace).")
    paths: list[str] = setting([], "Extra folders to index besides the workspace.")
    chunk_chars: int = setting(1200, "Largest chunk, in characters.")
    chunk_overlap: int = setting(150, "Characters of overlap between split chunks.")
    watch: bool = setting(True, "Pick up file edits while the daemon runs.")
    watch_interval: float = setting(2.0, "Seconds between checks for edited files.")
    recency_weight: float = setting(0.0, "Boost for recently modified files (0 disables).")
    mmr_lambda: float = setting(1.0, "Diversity trade-off for results (1.0 disables MMR).")
    length_prior: float = setting(
        0.0, "Favour longer chunks: BM25 times (chars / 1000) ** this (0: off; SciFact: 0.15)."
    )
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)


@dataclass(frozen=True)
class ResearchConfig:
    """[research]: how deep a research job goes by default."""

    dimensions: int = setting(4, "Dimensions a question is scoped into (3-6).")
    max_rounds: int = setting(2, "Gap-evaluation rounds before the report is written (0-5).")
    dimension_concurrency: int = setting(3, "Dimensions researched at once within a job.")
    max_concurrent_jobs: int = setting(2, "Jobs running at once; more wait as queued.")
    sources_per_dimension: int = setting(6, "Sources kept per dimension.")
    web_search: str = setting("none", "none, searxng, tavily, brave, serper or exa.")
    web_search_url: str = setting("", "Base URL of the web search API (SearXNG: your instance).")
    web_search_key_env: str = setting(
        "", "Name of the environment variable holding the search API key (never the key)."
    )
    session_ttl: int = setting(
        3600, "Seconds a research session lives unless extended (/api/research/sessions)."
    )
    sessions_per_key: int = setting(100, "Live research sessions one key may hold (0: no limit).")


@dataclass(frozen=True)
class HeartbeatConfig:
    """[heartbeat]: when recurring tasks from HEARTBEAT.md run."""

    enabled: bool = setting(True, "Run due tasks from HEARTBEAT.md.")
    interval: str = setting("30m", "Time between heartbeats (e.g. 30m, 1h).")
    active_hours: str = setting("", "Local hours to run in, e.g. 08:00-22:00 (empty: always).")
    timeout: str = setting("", "Longest a heartbeat may run (empty: half the interval).")
    timezone: str = setting(
        "", "IANA zone for due times and active_hours, e.g. Europe/Paris (empty: the system's)."
    )


# What each role may do, by route family (docs/api.md, "Access"); `admin` has every family.
DEFAULT_ROLE_PERMISSIONS = {
    "admin": [
        "query", "docs", "metrics", "capabilities", "config", "health",
        "chat", "memory", "research", "heartbeat", "admin",
    ],
    "user": [
        "query", "docs", "capabilities", "health", "chat", "memory", "research", "heartbeat",
    ],
}  # fmt: skip

# Requests per hour per key, by endpoint class (a surface names the class of each operation).
DEFAULT_RATE_LIMITS = {
    "sessions:create": 10,
    "sessions:get": 1000,
    "sessions:execute": 50,
    "other": 100,
}


@dataclass(frozen=True)
class APIConfig:
    """[api]: who may call the daemon (keys, roles) and how often (rate limits)."""

    key_env: str = setting(
        "", "If set, name of an environment variable whose value every request must present."
    )
    api_key: str = setting(
        "", "A shared key (X-API-Key or Authorization: Bearer) with the admin role."
    )
    bearer_token: str = setting("", "A token accepted as Authorization: Bearer, role admin.")
    api_keys: dict[str, str] = setting(
        {}, "Secret key of each role, as a table (role: key); docs/api.md has an example."
    )
    role_permissions: dict[str, list[str]] = setting(
        DEFAULT_ROLE_PERMISSIONS, "Route families each role may call (admin: all)."
    )
    rate_limit: int = setting(0, "Requests per minute per client (key, else address); 0: off.")
    rate_limits: dict[str, int] = setting(
        DEFAULT_RATE_LIMITS,
        "Requests per hour per key, by endpoint class (where a surface names one).",
    )
    rate_window: int = setting(
        3600, "Seconds of the rate_limits window (the research-sessions API: an hour)."
    )
    open_local: bool = setting(
        False, "Without keys, admit every local user, not only the daemon's own (a warning)."
    )
    web_fetch: bool = setting(False, "Let models call the web_fetch tool.")
    webhooks: list[str] = setting(
        [], "http(s) URLs that receive every finished query's result by POST (the query API)."
    )
    webhook_timeout: float = setting(10.0, "Seconds one webhook delivery attempt may take.")
    webhook_backoff: float = setting(
        1.0, "Seconds before the first webhook retry; doubled for each of the 3 retries."
    )
    stream_keepalive: float = setting(
        15.0, "Seconds of silence before a query stream sends a blank keep-alive line."
    )
    config_watch_interval: float = setting(
        2.0, "Seconds between checks of config.toml for edits applied live (0: no watching)."
    )


@dataclass(frozen=True)
class Config:
    """Every section of config.toml, checked: the daemon and the CLI share one immutable copy."""

    server: ServerConfig = field(default_factory=ServerConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    research: ResearchConfig = field(default_factory=ResearchConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    api: APIConfig = field(default_factory=APIConfig)
