//! report: findings and attempts (the public model), how judged attempts
//! become rows, and the printers (CSV, JSON Lines, the terminal report).

pub mod build;
pub mod ci;
pub mod model;
pub mod output;
pub mod redact;
pub mod saw;
pub mod terminal;

pub use model::{Attempt, CaptureReport, Finding, Outcome, Phase, Severity};
