//! Tempo's shared test data (`../shared/` beside the checkout): found, or announced as
//! missing.
//!
//! The data are Tempo's and stay outside the repository, so a clone on its own lacks
//! them. [`shared_dir`] then prints one line that names the missing directory and the
//! test returns early; with `TRACEQL_REQUIRE_SHARED` set (as `.ci/run` does) a missing
//! directory fails the test instead, so CI always runs them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable that turns a skip for missing shared data into a failure.
pub const REQUIRE_VAR: &str = "TRACEQL_REQUIRE_SHARED";

/// The variable that points at another `shared/` directory.
pub const SHARED_VAR: &str = "TRACEQL_SHARED_DIR";

/// The variable that points at another conformance directory (kept for existing set-ups).
pub const CONFORMANCE_VAR: &str = "TRACEQL_CONFORMANCE_DIR";

/// The workspace root: the nearest directory with a `Cargo.lock` above the package
/// whose tests are running (cargo sets `CARGO_MANIFEST_DIR` when it runs them), so a
/// build reused from another checkout still looks beside this one.
pub fn workspace_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(package)
}

/// `shared/` itself: `$TRACEQL_SHARED_DIR`, else `../shared` beside the checkout.
fn shared_root() -> PathBuf {
    std::env::var_os(SHARED_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"))
}

/// The directory `name` of the shared data (`conformance`, `tempo-blocks`), or `None`
/// after announcing on standard error that the calling test (named after its thread,
/// as the test harness names them) skips because it is missing.
///
/// # Panics
///
/// When the directory is missing and `TRACEQL_REQUIRE_SHARED` is set.
pub fn shared_dir(name: &str) -> Option<PathBuf> {
    let dir = match (name, std::env::var_os(CONFORMANCE_VAR)) {
        ("conformance", Some(dir)) => PathBuf::from(dir),
        _ => shared_root().join(name),
    };
    found_or_skip(dir)
}

/// A file of Tempo's conformance data, or `None` after announcing the skip (see
/// [`shared_dir`]).
pub fn conformance(file: &str) -> Option<PathBuf> {
    let dir = shared_dir("conformance")?;
    found_or_skip(dir.join(file))
}

fn found_or_skip(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{} is missing and {REQUIRE_VAR} is set: {test} needs Tempo's shared data",
        path.display()
    );
    // Straight to standard error: the test harness captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {} is missing (Tempo's shared data; set {SHARED_VAR} or place \
         shared/ beside the checkout)",
        path.display()
    );
    None
}

/// Returns from the calling test when shared data are missing: `let path =
/// require_shared!(conformance("file.json"));`.
#[macro_export]
macro_rules! require_shared {
    (conformance($file:expr)) => {
        match $crate::shared::conformance($file) {
            Some(path) => path,
            None => return,
        }
    };
    (dir($name:expr)) => {
        match $crate::shared::shared_dir($name) {
            Some(path) => path,
            None => return,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_path_is_found() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(found_or_skip(here.clone()), Some(here));
    }

    #[test]
    fn a_missing_path_is_skipped_or_fails_as_configured() {
        let missing = workspace_root().join("no-such-directory-here");
        let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0");
        let outcome = std::panic::catch_unwind(|| found_or_skip(missing));
        if required {
            assert!(
                outcome.is_err(),
                "a required directory that is missing fails"
            );
        } else {
            assert_eq!(outcome.ok(), Some(None));
        }
    }
}
