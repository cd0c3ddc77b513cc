//! `#[backends]` and `run_on`: the tests they generate run the function with the suite set,
//! and hand the test-harness attributes on.

use weave_testkit::{backends, current_suite, run_on, suite, Suite};

#[backends(embedded, served)]
fn sees_its_suite() {
    let s = current_suite().expect("run_on set a suite");
    assert!(matches!(s, Suite::Embedded | Suite::Served), "{s:?}");
    assert_eq!(suite(), s);
}

#[backends(reference)]
fn returns_what_the_function_returns() -> Result<(), String> {
    (current_suite() == Some(Suite::Reference))
        .then_some(())
        .ok_or_else(|| format!("{:?}", current_suite()))
}

#[backends(embedded)]
#[should_panic(expected = "on purpose")]
fn should_panic_goes_onto_the_tests() {
    panic!("on purpose");
}

#[test]
fn outside_run_on_the_suite_is_embedded() {
    assert_eq!(current_suite(), None);
    assert_eq!(suite(), Suite::Embedded);
}

#[test]
fn run_on_restores_the_previous_suite_also_after_a_panic() {
    run_on(Suite::Served, || {
        assert_eq!(
            run_on(Suite::Reference, current_suite),
            Some(Suite::Reference)
        );
        let caught = std::panic::catch_unwind(|| run_on(Suite::Embedded, || panic!("inner")));
        assert!(caught.is_err());
        assert_eq!(current_suite(), Some(Suite::Served));
    });
    assert_eq!(current_suite(), None);
}
