//! The OpenTelemetry GenAI (and OpenInference, Vercel AI) conventions Weave reads token usage
//! from, in one table shared by the tracing layer (span fields → `summary.usage`) and the
//! server's OTLP ingest (span attributes → `summary.usage`), as the Weave server maps
//! OpenTelemetry spans (its `trace_server/opentelemetry/constants.py`).

/// A usage field of Weave's `LLMUsage` and the attribute keys it is read from, in order: the
/// first key present wins.
pub type UsageConvention = (&'static str, &'static [&'static str]);

/// Weave's usage keys and the span attributes they come from.
pub const USAGE_KEYS: &[UsageConvention] = &[
    ("input_tokens", &["gen_ai.usage.input_tokens"]),
    (
        "prompt_tokens",
        &[
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
            "ai.usage.promptTokens",
        ],
    ),
    (
        "completion_tokens",
        &[
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
            "ai.usage.completionTokens",
        ],
    ),
    ("output_tokens", &["gen_ai.usage.output_tokens"]),
    (
        "total_tokens",
        &["llm.usage.total_tokens", "llm.token_count.total"],
    ),
    (
        "cache_creation_input_tokens",
        &["gen_ai.usage.cache_creation.input_tokens"],
    ),
    (
        "cache_read_input_tokens",
        &["gen_ai.usage.cache_read.input_tokens"],
    ),
];
