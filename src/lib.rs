//! rdpsift: why did that Remote Desktop connection fail?
//!
//! The pipeline, one module per stage, each importing only the stages
//! before it (tests/layers.rs checks):
//! capture → decode → flow → proto → session → detect → report, run by
//! `run`; `finding` is the vocabulary they all speak; `proto` holds the
//! parsers, leaves that depend on nothing but the vocabulary and the
//! capture's marks.
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod finding;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
pub mod report;
pub mod run;
pub mod session;
#[doc(hidden)]
pub mod synth;
