//! rdpsift: why did that Remote Desktop connection fail?
//!
//! The pipeline, one module per stage:
//! capture → decode → flow → proto → session → detect → report.
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
pub mod report;
pub mod session;
#[doc(hidden)]
pub mod synth;
