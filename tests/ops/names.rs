//! Op names and versions: the default name is the fn name, `name = ".."` overrides it; each
//! call's `op_name` is a ref to the op object saved with the function's source text, so
//! changed code is a new version of the same op; `kind` is stored in the call's attributes.

use serde_json::json;

use crate::common::{calls, TestStore};

#[weave::op]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[weave::op(name = "math.multiply")]
fn mul(a: u32, b: u32) -> u32 {
    a * b
}

/// Splits `digest` off an op ref of this test store, checking the rest of its form.
fn digest_of<'a>(op_ref: &'a str, name: &str) -> &'a str {
    let prefix = format!("weave:///test-entity/test-project/op/{name}:");
    let digest = op_ref
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{op_ref:?} does not start with {prefix:?}"));
    assert!(
        !digest.is_empty() && digest.chars().all(|c| c.is_ascii_alphanumeric()),
        "digest {digest:?}"
    );
    digest
}

#[test]
fn default_name_is_the_fn_name_and_op_name_is_an_op_ref() {
    let s = TestStore::new();
    let r = s.under_root(|| add(1, 2));
    assert_eq!(r.out, 3);
    let c = r.only_child();
    assert_eq!(c.func_name(), "add");
    digest_of(c.op_name(), "add");
    assert_eq!(c.display_name(), None);
}

#[test]
fn name_option_overrides_the_fn_name() {
    let s = TestStore::new();
    let r = s.under_root(|| mul(3, 4));
    assert_eq!(r.out, 12);
    let c = r.only_child();
    assert_eq!(c.func_name(), "math.multiply");
    digest_of(c.op_name(), "math.multiply");
}

#[test]
fn op_code_is_the_functions_source_with_a_normalised_attribute() {
    let s = TestStore::new();
    let r = s.under_root(|| (add(1, 1), mul(2, 2)));
    let [a, m] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(
        s.client.op_code(a.op_name()).unwrap(),
        "#[weave::op]\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n"
    );
    // The options are not part of the code: the attribute reads `#[weave::op]`.
    assert_eq!(
        s.client.op_code(m.op_name()).unwrap(),
        "#[weave::op]\nfn mul(a: u32, b: u32) -> u32 {\n    a * b\n}\n"
    );
}

struct Calc {
    k: u32,
}

impl Calc {
    /// Scales by k.
    #[inline]
    #[weave::op(name = "Calc.scale", kind = "tool")]
    fn scale(&self, x: u32) -> u32 {
        // keep this comment
        self.k * x
    }
}

#[test]
fn op_code_of_a_method_is_dedented_and_keeps_docs_attributes_and_comments() {
    let s = TestStore::new();
    let r = s.under_root(|| Calc { k: 3 }.scale(5));
    assert_eq!(r.out, 15);
    let c = r.only_child();
    assert_eq!(c.func_name(), "Calc.scale");
    assert_eq!(
        s.client.op_code(c.op_name()).unwrap(),
        "/// Scales by k.\n#[inline]\n#[weave::op]\nfn scale(&self, x: u32) -> u32 {\n    // keep this comment\n    self.k * x\n}\n"
    );
}

mod v1 {
    #[weave::op(name = "summarize")]
    pub fn summarize(text: &str) -> String {
        text.chars().take(5).collect()
    }
}

mod v2 {
    #[weave::op(name = "summarize")]
    pub fn summarize(text: &str) -> String {
        text.split_whitespace().next().unwrap_or("").to_string()
    }
}

#[test]
fn same_name_with_different_code_is_two_versions_of_one_op() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        (
            v1::summarize("hello world"),
            v2::summarize("hello world"),
            v1::summarize("again"),
        )
    });
    assert_eq!(r.out, ("hello".into(), "hello".into(), "again".into()));
    let [a, b, a2] = &r.children[..] else {
        panic!("expected 3 children, got {:?}", r.children)
    };
    for c in [a, b, a2] {
        assert_eq!(c.func_name(), "summarize");
    }
    let (da, db) = (
        digest_of(a.op_name(), "summarize"),
        digest_of(b.op_name(), "summarize"),
    );
    assert_ne!(da, db, "different code, different version");
    assert_eq!(a2.op_name(), a.op_name(), "same code, same version");

    assert!(s.client.op_code(a.op_name()).unwrap().contains("take(5)"));
    assert!(s
        .client
        .op_code(b.op_name())
        .unwrap()
        .contains("split_whitespace"));

    let versions = s.client.object_versions("summarize").unwrap();
    let mut digests: Vec<&str> = versions.iter().map(|v| v.digest.as_str()).collect();
    digests.sort();
    let mut expected = vec![da, db];
    expected.sort();
    assert_eq!(digests, expected);

    // Every version of the op is found through the `:*` wildcard.
    let all = calls(
        &s.client,
        weave::CallsFilter {
            op_names: Some(vec![
                "weave:///test-entity/test-project/op/summarize:*".into()
            ]),
            ..Default::default()
        },
    );
    assert_eq!(all.len(), 3);
}

#[test]
fn calling_an_op_many_times_saves_one_version() {
    let s = TestStore::new();
    let r = s.under_root(|| (0..5).map(|i| add(i, i)).sum::<u32>());
    assert_eq!(r.out, 20);
    assert_eq!(r.children.len(), 5);
    assert!(r
        .children
        .iter()
        .all(|c| c.op_name() == r.children[0].op_name()));
    let versions = s.client.object_versions("add").unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        versions[0].digest,
        digest_of(r.children[0].op_name(), "add")
    );
}

#[test]
fn the_version_is_the_same_across_clients_and_stores() {
    // The digest is a function of the code only.
    let s1 = TestStore::new();
    let s2 = TestStore::new();
    let a = s1.under_root(|| add(1, 2));
    let b = s2.under_root(|| add(3, 4));
    assert_eq!(a.only_child().op_name(), b.only_child().op_name());
}

#[weave::op(kind = "llm")]
fn generate(prompt: &str) -> String {
    prompt.to_uppercase()
}

#[weave::op(kind = "agent", name = "Planner")]
async fn plan(goal: String) -> Vec<String> {
    vec![goal]
}

#[test]
fn kind_is_stored_in_the_weave_attributes() {
    let s = TestStore::new();
    let r = s.under_root(|| (generate("hi"), add(1, 1)));
    let [g, a] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(g.attributes()["weave"]["kind"], json!("llm"));
    assert_eq!(g.attributes()["weave"]["source"], "rust-sdk");
    assert!(a.attributes()["weave"].get("kind").is_none());

    let r = crate::common::current_thread_rt().block_on(s.under_root_async(plan("ship".into())));
    let p = r.only_child();
    assert_eq!(p.func_name(), "Planner");
    assert_eq!(p.attributes()["weave"]["kind"], json!("agent"));
}

struct Planner;
struct Executor;

impl Planner {
    #[weave::op]
    fn run(&self, goal: &str) -> String {
        format!("plan for {goal}")
    }
}

impl Executor {
    #[weave::op]
    fn run(&self, plan: &str) -> String {
        format!("done: {plan}")
    }

    #[weave::op(name = "execute")]
    fn run_named(&self, plan: &str) -> usize {
        plan.len()
    }
}

#[test]
fn methods_of_different_types_are_different_ops_named_type_dot_method() {
    let s = crate::common::TestStore::new();
    let r = s.under_root(|| {
        let plan = Planner.run("ship it");
        let _ = Executor.run_named(&plan);
        Executor.run(&plan)
    });
    assert_eq!(r.out, "done: plan for ship it");
    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["Planner.run", "execute", "Executor.run"]);
    assert!(r.children[0].op_name().contains("/op/Planner.run:"));
}

trait Describe {
    #[weave::op]
    fn describe(&self) -> String {
        "a thing".to_string()
    }
}
struct Alpha;
struct Beta;
impl Describe for Alpha {}
impl Describe for Beta {}

#[test]
fn a_trait_default_method_is_one_op_per_implementing_type() {
    let s = crate::common::TestStore::new();
    let r = s.under_root(|| (Alpha.describe(), Beta.describe(), Alpha.describe()));
    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["Alpha.describe", "Beta.describe", "Alpha.describe"]);
}
