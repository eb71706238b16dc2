//! Envelope encryption (placeholder until implemented).
