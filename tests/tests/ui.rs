//! Compile-fail UI tests of `#[derive(Model)]`: each file in `tests/ui/` breaks one rule, and
//! its `.stderr` is the error the user sees. Regenerate with
//! `TRYBUILD=overwrite cargo test -p orm-tests --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    // Relative to this package's directory (`tests/`), where cargo runs its tests.
    t.compile_fail("ui/*.rs");
}
