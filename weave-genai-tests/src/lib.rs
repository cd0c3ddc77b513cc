//! Nothing here: this crate holds `tests/genai_crates`, which drives the Rust GenAI crates
//! (rig-core, genai) against an OpenAI-compatible server on loopback under `WeaveLayer`. It
//! is a crate of its own so that only those tests build them, not every test and benchmark of
//! `weave`.
