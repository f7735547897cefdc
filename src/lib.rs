//! rdpsift: why did that Remote Desktop connection fail?
//!
//! The pipeline, one module per stage:
//! capture → decode → flow → proto → session → detect → report.
#![deny(unsafe_code)]

pub mod capture;
pub mod decode;
pub mod config;
pub mod flow;
pub mod proto;
pub mod detect;
pub mod report;
pub mod session;
pub mod engine;
#[doc(hidden)]
pub mod synth;
