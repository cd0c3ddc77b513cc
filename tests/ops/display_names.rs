//! `display_name`: a literal, or a function of the new call (which sees its inputs).

use serde_json::json;
use weave::Call;

use crate::common::TestStore;

#[weave::op(display_name = "Weather lookup")]
fn get_weather(city: &str) -> String {
    format!("sunny in {city}")
}

#[weave::op]
fn plain(x: u32) -> u32 {
    x
}

fn weather_label(call: &Call) -> String {
    format!(
        "weather for {} ({} days)",
        call.inputs()["city"].as_str().unwrap_or("?"),
        call.inputs()["days"]
    )
}

#[weave::op(display_name = weather_label)]
fn forecast(city: &str, days: u32) -> Vec<String> {
    (0..days).map(|d| format!("{city} day {d}")).collect()
}

mod labels {
    pub fn by_id(call: &weave::Call) -> String {
        format!("{}#{}", call.func_name(), &call.id()[call.id().len() - 4..])
    }
}

#[weave::op(display_name = labels::by_id)]
fn tagged() -> u8 {
    1
}

#[test]
fn literal_display_name_is_stored() {
    let s = TestStore::new();
    let r = s.under_root(|| (get_weather("Paris"), plain(1)));
    assert_eq!(r.out.0, "sunny in Paris");
    let [named, unnamed] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(named.display_name().as_deref(), Some("Weather lookup"));
    assert_eq!(named.func_name(), "get_weather");
    assert_eq!(unnamed.display_name(), None);
}

#[test]
fn display_name_function_sees_the_calls_inputs() {
    let s = TestStore::new();
    let r = s.under_root(|| (forecast("Oslo", 2), forecast("Lima", 5)));
    assert_eq!(r.out.0, vec!["Oslo day 0", "Oslo day 1"]);
    let names: Vec<Option<String>> = r.children.iter().map(|c| c.display_name()).collect();
    assert_eq!(
        names,
        [
            Some("weather for Oslo (2 days)".to_string()),
            Some("weather for Lima (5 days)".to_string())
        ]
    );
    assert_eq!(r.children[1].inputs()["days"], json!(5));
}

#[test]
fn display_name_function_by_path_sees_the_calls_id_and_name() {
    let s = TestStore::new();
    let r = s.under_root(tagged);
    let c = r.only_child();
    let id = c.id();
    assert_eq!(
        c.display_name().unwrap(),
        format!("tagged#{}", &id[id.len() - 4..])
    );
}
