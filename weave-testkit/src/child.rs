//! Child processes for behaviour driven by the environment or by process-global state: the
//! parent test re-runs its own binary for one `#[ignore]`d child test with variables set.

use std::process::{Command, Output};

/// Re-runs this test binary for the one `#[ignore]`d test `test` (its full path, e.g.
/// `init::child_writes`) with `envs` set (and weave's variables otherwise unset). Asserts
/// that it ran and passed, and returns its output.
pub fn run_child(test: &str, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in [
        "WEAVE_DISABLED",
        "WEAVE_PRINT_CALL_LINK",
        "WEAVE_DB_PATH",
        "WEAVE_LOCAL_APP_URL",
        "WANDB_ENTITY",
        "WF_TRACE_SERVER_URL",
        "WANDB_API_KEY",
        "WANDB_BASE_URL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {test} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("{CHILD_DONE} {test}")),
        "child {test} did not run to its end:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    out
}

/// Printed by a child test as its last act (`child_done(name)`), so the parent knows the
/// filter matched and the test got to its end.
pub const CHILD_DONE: &str = "CHILD-TEST-DONE";

/// Prints [`CHILD_DONE`] and the test's name: the child test `test`'s last act.
pub fn child_done(test: &str) {
    use std::io::Write;
    println!("{CHILD_DONE} {test}");
    let _ = std::io::stdout().flush();
}
