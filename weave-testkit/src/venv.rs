//! The pinned Python environments of the tests: [`python`] gives
//! the interpreter of `tests/support/python/NAME/`, installed on first use by
//! `tests/support/python/venv.py` into `$WEAVE_RS_TEST_CACHE` (default
//! `${XDG_CACHE_HOME:-~/.cache}/weave-rs-tests`). The bootstrap interpreter is
//! `$WEAVE_RS_TEST_PYTHON`, else `python3` (3.11 or newer).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// The python of environment `name` (`ref-server`, `py-client`), installing it on first
/// use; asked of `venv.py` once per process and name. Panics with what to do when it fails.
pub fn python(name: &str) -> PathBuf {
    static ENVS: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let slot = ENVS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone();
    // Other environments are not held up while this one installs.
    slot.get_or_init(|| install(name)).clone()
}

/// The directory of `venv.py` and the environments' requirement files.
pub fn python_dir() -> PathBuf {
    crate::workspace_root().join("tests/support/python")
}

fn install(name: &str) -> PathBuf {
    let bootstrap = std::env::var("WEAVE_RS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = python_dir().join("venv.py");
    let help = format!(
        "the tests need the Python environment '{name}' (pinned in {dir}/{name}/), which \
         `{bootstrap} {script} {name}` installs on first use into $WEAVE_RS_TEST_CACHE \
         (default ~/.cache/weave-rs-tests). It needs Python 3.11+ with venv \
         (WEAVE_RS_TEST_PYTHON picks the interpreter) and access to the package index; \
         run that command by hand to see the whole error",
        dir = python_dir().display(),
        script = script.display(),
    );
    // stderr is inherited: the install's progress shows in the test output.
    let out = Command::new(&bootstrap)
        .arg(&script)
        .arg(name)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bootstrap}: {e}; {help}"));
    assert!(
        out.status.success(),
        "venv.py failed ({}); {help}",
        out.status
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "venv.py named {path:?}, which does not exist; {help}"
    );
    path
}
