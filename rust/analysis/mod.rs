//! Analysis core: per-series models and the score pipeline.

pub mod model;
pub mod score;
