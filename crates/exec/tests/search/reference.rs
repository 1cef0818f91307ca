//! Reference evaluator (to come).
