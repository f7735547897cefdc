//! rdpsift: why did that Remote Desktop connection fail?
//!
//! The pipeline, one module per stage:
//! capture → decode → flow → proto → session → detect → report.
#![deny(unsafe_code)]

pub mod capture;
