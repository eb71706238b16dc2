//! Typed client (placeholder).
