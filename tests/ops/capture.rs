//! What an op records as its inputs and output: Serialize, else Debug text, else a
//! placeholder naming the type — for plain fns, methods, generics, `impl Trait` returns and
//! destructured arguments.

use serde::Serialize;
use serde_json::{json, Value};

use crate::common::TestStore;

#[derive(Serialize, Debug, Clone, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[weave::op]
fn scale(p: Point, k: i32) -> Point {
    Point {
        x: p.x * k,
        y: p.y * k,
    }
}

#[test]
fn serializable_inputs_and_output_are_json() {
    let s = TestStore::new();
    let r = s.under_root(|| scale(Point { x: 1, y: -2 }, 3));
    assert_eq!(r.out, Point { x: 3, y: -6 });
    let c = r.only_child();
    assert_eq!(c.func_name(), "scale");
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"p": {"x": 1, "y": -2}, "k": 3})
    );
    assert_eq!(c.output(), json!({"x": 3, "y": -6}));
    assert_eq!(c.status(), weave::TraceStatus::Success);
}

#[weave::op]
fn shout(text: &str, times: usize, tags: Vec<String>, maybe: Option<f64>) -> String {
    format!("{}{}", text.to_uppercase(), "!".repeat(times))
        + &tags.join(",")
        + &format!("{maybe:?}")
}

#[test]
fn borrowed_and_std_inputs_are_json() {
    let s = TestStore::new();
    let r = s.under_root(|| shout("hi", 2, vec!["a".into(), "b".into()], None));
    assert_eq!(r.out, "HI!!a,bNone");
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"text": "hi", "times": 2, "tags": ["a", "b"], "maybe": null})
    );
    assert_eq!(c.output(), json!("HI!!a,bNone"));
}

#[weave::op]
fn unit_op(n: u32) {
    assert!(n > 0);
}

#[test]
fn unit_return_is_recorded_as_null() {
    let s = TestStore::new();
    let r = s.under_root(|| unit_op(1));
    let c = r.only_child();
    assert_eq!(c.inputs()["n"], 1);
    assert_eq!(c.output(), Value::Null);
    assert_eq!(c.status(), weave::TraceStatus::Success);
}

/// Debug but not Serialize.
#[derive(Debug)]
struct Prompt {
    role: &'static str,
    text: String,
}

#[derive(Debug)]
enum Reply {
    Text(String),
}

#[weave::op]
fn answer(prompt: Prompt) -> Reply {
    Reply::Text(format!("{} said {}", prompt.role, prompt.text))
}

#[test]
fn debug_only_values_are_recorded_as_debug_text() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        answer(Prompt {
            role: "user",
            text: "hello".into(),
        })
    });
    assert!(matches!(&r.out, Reply::Text(t) if t == "user said hello"));
    let c = r.only_child();
    assert_eq!(
        c.inputs()["prompt"],
        json!(r#"Prompt { role: "user", text: "hello" }"#)
    );
    assert_eq!(c.output(), json!(r#"Text("user said hello")"#));
}

/// Neither Serialize nor Debug: no derive, no bound — the op still compiles and runs.
struct Opaque(u32);

#[weave::op]
fn unwrap_opaque(o: Opaque, by_ref: &Opaque) -> Opaque {
    Opaque(o.0 + by_ref.0)
}

#[test]
fn values_with_neither_serialize_nor_debug_are_placeholders_naming_the_type() {
    let s = TestStore::new();
    let r = s.under_root(|| unwrap_opaque(Opaque(2), &Opaque(5)));
    assert_eq!(r.out.0, 7);
    let c = r.only_child();
    for v in [&c.inputs()["o"], &c.inputs()["by_ref"], &c.output()] {
        let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
        assert!(
            s.starts_with('<') && s.ends_with("::Opaque>") && !s.contains('&'),
            "placeholder {s:?}"
        );
    }
}

#[derive(Serialize)]
struct Counter {
    n: u32,
}

impl Counter {
    #[weave::op]
    fn get(&self) -> u32 {
        self.n
    }

    #[weave::op]
    fn bump(&mut self, by: u32) -> u32 {
        self.n += by;
        self.n
    }

    #[weave::op]
    fn into_total(self, extra: u32) -> u32 {
        self.n + extra
    }
}

#[test]
fn self_is_captured_for_ref_mut_ref_and_value_receivers() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let mut c = Counter { n: 1 };
        let a = c.get();
        let b = c.bump(10);
        let after = c.n;
        let t = c.into_total(100);
        (a, b, after, t)
    });
    assert_eq!(r.out, (1, 11, 11, 111));
    let [get, bump, into_total] = &r.children[..] else {
        panic!("expected 3 children, got {:?}", r.children)
    };
    // Methods are named `Type.method`, as Python names them by `__qualname__`.
    assert_eq!(get.func_name(), "Counter.get");
    assert_eq!(
        Value::Object(get.inputs().clone()),
        json!({"self": {"n": 1}})
    );
    assert_eq!(get.output(), json!(1));

    assert_eq!(bump.func_name(), "Counter.bump");
    // Inputs are captured when the call starts: self before the mutation.
    assert_eq!(
        Value::Object(bump.inputs().clone()),
        json!({"self": {"n": 1}, "by": 10})
    );
    assert_eq!(bump.output(), json!(11));

    assert_eq!(into_total.func_name(), "Counter.into_total");
    assert_eq!(
        Value::Object(into_total.inputs().clone()),
        json!({"self": {"n": 11}, "extra": 100})
    );
    assert_eq!(into_total.output(), json!(111));
}

#[weave::op]
fn identity<T>(x: T) -> T {
    x
}

#[weave::op]
fn wrap_ser<T: Serialize>(x: T) -> Vec<T> {
    vec![x]
}

#[weave::op]
fn describe<T: std::fmt::Debug>(x: T) -> String {
    format!("{x:?}")
}

#[test]
fn generic_arguments_are_captured_by_their_bounds() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        (
            identity(5u32),
            wrap_ser(Point { x: 1, y: 2 }),
            describe(Some(3u8)),
        )
    });
    assert_eq!(r.out.0, 5);
    assert_eq!(r.out.1, vec![Point { x: 1, y: 2 }]);
    assert_eq!(r.out.2, "Some(3)");
    let [id, ser, dbg] = &r.children[..] else {
        panic!("expected 3 children, got {:?}", r.children)
    };
    // An unbounded T can only be named: the placeholder carries the concrete type.
    assert_eq!(id.inputs()["x"], json!("<u32>"));
    assert_eq!(id.output(), json!("<u32>"));
    // T: Serialize is JSON.
    assert_eq!(ser.inputs()["x"], json!({"x": 1, "y": 2}));
    assert_eq!(ser.output(), json!([{"x": 1, "y": 2}]));
    // T: Debug is Debug text.
    assert_eq!(dbg.inputs()["x"], json!("Some(3)"));
    assert_eq!(dbg.output(), json!("Some(3)"));
}

#[weave::op]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[weave::op]
fn greeting(name: String) -> impl Serialize {
    json!({"greeting": format!("hello {name}")})
}

#[weave::op]
fn adder(k: u32) -> impl Fn(u32) -> u32 {
    move |x| x + k
}

#[test]
fn impl_trait_returns_work_and_record_what_the_concrete_type_allows() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let e: Vec<u32> = evens(7).collect();
        let g = serde_json::to_value(greeting("ada".into())).unwrap();
        let add = adder(3);
        (e, g, add(4))
    });
    assert_eq!(r.out.0, vec![0, 2, 4, 6]);
    assert_eq!(r.out.1, json!({"greeting": "hello ada"}));
    assert_eq!(r.out.2, 7);
    let [e, g, a] = &r.children[..] else {
        panic!("expected 3 children, got {:?}", r.children)
    };
    assert_eq!(e.inputs()["limit"], 7);
    // The iterator is Debug (not Serialize): its Debug text.
    let text = e.output();
    let text = text.as_str().expect("iterator output is text");
    assert!(text.contains("Filter") && text.contains("0..7"), "{text}");
    assert_eq!(g.output(), json!({"greeting": "hello ada"}));
    // A closure is neither: a placeholder.
    let text = a.output();
    let text = text.as_str().expect("closure output is text");
    assert!(text.starts_with('<') && text.contains("closure"), "{text}");
    assert_eq!(a.status(), weave::TraceStatus::Success);
}

#[weave::op]
fn destructured(
    (a, b): (u32, u32),
    Point { x, y: why }: Point,
    &[first, _, ref last]: &[u8; 3],
    _ignored: bool,
    mut acc: Vec<u32>,
) -> u32 {
    acc.push(a + b);
    acc.iter().sum::<u32>() + x as u32 + why as u32 + first as u32 + *last as u32
}

#[test]
fn destructured_arguments_record_each_bound_name() {
    let s = TestStore::new();
    let r =
        s.under_root(|| destructured((1, 2), Point { x: 10, y: 20 }, &[100, 0, 7], true, vec![5]));
    assert_eq!(r.out, 1 + 2 + 5 + 10 + 20 + 100 + 7);
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({
            "a": 1, "b": 2,
            "x": 10, "why": 20,
            "first": 100, "last": 7,
            "_ignored": true,
            "acc": [5],
        })
    );
}

#[weave::op]
fn r#match(r#in: u32) -> u32 {
    r#in + 1
}

#[test]
fn raw_identifiers_are_recorded_without_the_prefix() {
    let s = TestStore::new();
    let r = s.under_root(|| r#match(1));
    assert_eq!(r.out, 2);
    let c = r.only_child();
    assert_eq!(c.func_name(), "match");
    assert_eq!(Value::Object(c.inputs().clone()), json!({"in": 1}));
}

#[derive(Serialize, Debug)]
enum Nest {
    Leaf,
    Node(Box<Nest>),
}

fn nest(depth: usize) -> Nest {
    let mut n = Nest::Leaf;
    for _ in 0..depth {
        n = Nest::Node(Box::new(n));
    }
    n
}

fn depth_of(n: &Nest) -> usize {
    let mut d = 0;
    let mut cur = n;
    while let Nest::Node(inner) = cur {
        d += 1;
        cur = inner;
    }
    d
}

#[weave::op]
fn measure(tree: Nest) -> Nest {
    assert_eq!(depth_of(&tree), 1000);
    tree
}

fn json_nest(depth: usize) -> Value {
    let mut v = json!("bottom");
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

#[weave::op]
fn deep_json(doc: Value) -> usize {
    let mut d = 0;
    let mut cur = &doc;
    while let Some(inner) = cur.get(0) {
        d += 1;
        cur = inner;
    }
    d
}

fn contains_str(v: &Value, needle: &str) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains(needle) => return true,
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    false
}

#[test]
fn a_1000_level_deep_input_is_recorded_capped_and_does_not_crash() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let back = measure(nest(1000));
        let d = depth_of(&back);
        // Drop iteratively: the default drop of a 1000-deep Box chain recurses.
        let mut cur = back;
        while let Nest::Node(inner) = cur {
            cur = *inner;
        }
        let j = deep_json(json_nest(1000));
        (d, j)
    });
    assert_eq!(r.out, (1000, 1000));
    let [m, j] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(m.status(), weave::TraceStatus::Success);
    let inputs = Value::Object(m.inputs().clone());
    assert!(contains_str(&inputs, "<EXCEEDS_MAX_DEPTH>"), "{inputs}");
    assert!(contains_str(&m.output(), "<EXCEEDS_MAX_DEPTH>"));
    assert_eq!(j.status(), weave::TraceStatus::Success);
    assert_eq!(j.output(), json!(1000));
    assert!(contains_str(
        &Value::Object(j.inputs().clone()),
        "<EXCEEDS_MAX_DEPTH>"
    ));
}

#[weave::op]
fn word_count(text: String) -> usize {
    text.split(' ').count()
}

#[test]
fn a_huge_input_is_replaced_by_the_size_marker_and_the_call_is_kept() {
    let s = TestStore::new();
    let text = "word ".repeat(1_000_000); // 5 MB
    let r = s.under_root(|| word_count(text.trim_end().to_string()));
    assert_eq!(r.out, 1_000_000);
    let c = r.only_child();
    assert_eq!(c.output(), json!(1_000_000));
    assert_eq!(c.status(), weave::TraceStatus::Success);
    assert!(
        contains_str(&Value::Object(c.inputs().clone()), "<EXCEEDS_LIMITS>"),
        "{:?}",
        c.inputs().keys().collect::<Vec<_>>()
    );
}

#[weave::op]
fn histogram(counts: std::collections::HashMap<(u8, u8), u32>, label: &str) -> usize {
    counts.len() + label.len()
}

#[test]
fn a_value_whose_serialize_fails_is_recorded_as_a_readable_placeholder() {
    let s = TestStore::new();
    let mut counts = std::collections::HashMap::new();
    counts.insert((1, 2), 3);
    let r = s.under_root(|| histogram(counts, "ab"));
    assert_eq!(r.out, 3);
    let c = r.only_child();
    // JSON object keys must be strings: serde_json refuses tuple keys.
    let m = c.inputs()["counts"].as_str().expect("placeholder text");
    assert!(
        m.starts_with("<unserializable")
            && m.contains("HashMap")
            && m.contains("key must be a string"),
        "{m}"
    );
    assert_eq!(c.inputs()["label"], "ab");
    assert_eq!(c.output(), json!(3));
}

#[weave::op]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[test]
fn borrowed_return_values_with_lifetimes_are_recorded() {
    let s = TestStore::new();
    let (x, y) = (String::from("short"), String::from("much longer"));
    let r = s.under_root(|| longest(&x, &y).len());
    assert_eq!(r.out, 11);
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"a": "short", "b": "much longer"})
    );
    assert_eq!(c.output(), json!("much longer"));
}

/// A value whose `Serialize` panics: tracing must not change what the program does.
struct PanicsWhenSerialized;
impl serde::Serialize for PanicsWhenSerialized {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("serialize exploded")
    }
}

#[weave::op]
fn takes_bad_input(bad: PanicsWhenSerialized, n: u32) -> u32 {
    let _ = bad;
    n + 1
}

#[weave::op]
fn returns_bad_output(n: u32) -> (u32, PanicsWhenSerialized) {
    (n, PanicsWhenSerialized)
}

#[test]
fn a_panicking_serialize_does_not_stop_the_op() {
    let s = TestStore::new();
    let r = s.under_root(|| takes_bad_input(PanicsWhenSerialized, 1));
    assert_eq!(r.out, 2);
    let c = r.only_child();
    assert_eq!(c.output(), serde_json::json!(2));
    assert!(c.inputs()["_weave_capture_error"]
        .as_str()
        .unwrap()
        .contains("serialize exploded"));

    let r = s.under_root(|| returns_bad_output(5).0);
    assert_eq!(r.out, 5);
    let out = r.only_child().output();
    assert!(
        out.as_str().unwrap().contains("serialize exploded"),
        "{out}"
    );
}

#[weave::op]
fn evaluate(config: &weave::refs::ObjectRef, note: &str, rows: &[&str]) -> usize {
    note.len() + rows.len() + config.name.len()
}

/// The refs inside an op's arguments (an `ObjectRef`, a ref string nested in a list) are
/// indexed, so `input_refs` finds the call; a string that merely mentions the scheme is not
/// a ref.
#[test]
fn refs_in_an_ops_arguments_are_indexed() {
    let s = TestStore::new();
    let cfg = s
        .client
        .save(&json!({"temperature": 0.1}), "config")
        .unwrap();
    let row = s.client.save(&json!({"q": "?"}), "row").unwrap();
    let other = s.client.save(&json!({"x": 1}), "other").unwrap();
    let row_uri = row.to_string();
    let r = s.under_root(|| {
        (
            evaluate(&cfg, "weave:/// is a prefix, not a ref here", &[&row_uri]),
            evaluate(&cfg, "plain", &[]),
        )
    });
    assert_eq!(r.children.len(), 2);
    let with_refs = |refs: Vec<String>| {
        let filter = weave::CallsFilter {
            input_refs: Some(refs),
            ..Default::default()
        };
        let mut ids: Vec<String> = s
            .client
            .get_calls(weave::CallsQuery::new().filter(filter))
            .map(|c| c.unwrap().id().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut both: Vec<String> = r.children.iter().map(|c| c.id().to_string()).collect();
    both.sort();
    assert_eq!(with_refs(vec![cfg.to_string()]), both);
    assert_eq!(with_refs(vec![row_uri.clone()]), [r.children[0].id()]);
    assert!(with_refs(vec![other.to_string()]).is_empty());
    assert_eq!(r.children[0].inputs()["config"], cfg.to_string());
    assert_eq!(r.children[0].inputs()["rows"], json!([row_uri]));
}
