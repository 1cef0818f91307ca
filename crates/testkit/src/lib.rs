//! Test support for the traceql workspace, kept out of the libraries.
//!
//! - [`shared`]: Tempo's conformance data and blocks, which live beside the checkout in
//!   `../shared/` and never in the repository. A test that needs them skips with one
//!   loud line when they are absent, unless `TRACEQL_REQUIRE_SHARED` is set (CI sets
//!   it), in which case it fails.
//! - [`moto`]: a real S3-compatible server (moto) on a free loopback port.
//!
//! It depends on nothing but the standard library, so every test binary can use it.

pub mod moto;
pub mod shared;

pub use moto::S3TestServer;
pub use shared::{conformance, shared_dir};
