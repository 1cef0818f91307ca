//! Golden files (to come).
