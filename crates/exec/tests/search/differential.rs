//! Differential test (to come).
