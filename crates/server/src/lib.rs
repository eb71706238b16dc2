//! amika server (placeholder).
