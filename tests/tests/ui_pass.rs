//! Models that must compile: each file in `tests/ui-pass/` is a valid use of
//! `#[derive(Model)]` that a stricter check must not reject.

#[test]
fn ui_pass() {
    let t = trybuild::TestCases::new();
    // Relative to this package's directory (`tests/`), where cargo runs its tests.
    t.pass("ui-pass/*.rs");
}
