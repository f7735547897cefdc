//! report: findings and attempts, and the printers (CSV, JSON Lines, table).

pub mod model;
pub mod output;

pub use model::{Attempt, CaptureReport, Finding, Outcome, Phase, Severity};
