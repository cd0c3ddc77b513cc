//! Compile-time behaviour of #[weave::op]: misuse is a compile error pointing at the token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
