//! Reaction emojis: "exactly one emoji" and the names the Weave server adds to a reaction.
//!
//! The Weave server names an emoji with the Python `emoji` package (`demojize`), whose English
//! names are the Unicode CLDR names spelled as shortcodes: `👍` → `:thumbs_up:`, `👍🏽` →
//! `:thumbs_up_medium_skin_tone:`, `🇫🇷` → `:France:`. The `emojis` crate carries the CLDR
//! names; [`alias_of_name`] spells them the same way (checked against every emoji the Python
//! package knows). A reaction's `detoned` form drops the skin-tone part of the name and maps it
//! back to an emoji, as the server does; when no emoji has that name, the name itself is kept.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The enrichment of one reaction emoji.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReactionNames {
    /// `:thumbs_up_medium_skin_tone:`.
    pub(crate) alias: String,
    /// The emoji without skin tones (`👍`).
    pub(crate) detoned: String,
    /// The alias of `detoned` (`:thumbs_up:`).
    pub(crate) detoned_alias: String,
}

/// Emoji components the Python package counts as emojis but the `emojis` crate does not list.
const COMPONENTS: &[(&str, &str)] = &[
    ("\u{1F3FB}", ":light_skin_tone:"),
    ("\u{1F3FC}", ":medium-light_skin_tone:"),
    ("\u{1F3FD}", ":medium_skin_tone:"),
    ("\u{1F3FE}", ":medium-dark_skin_tone:"),
    ("\u{1F3FF}", ":dark_skin_tone:"),
    ("\u{1F9B0}", ":red_hair:"),
    ("\u{1F9B1}", ":curly_hair:"),
    ("\u{1F9B2}", ":bald:"),
    ("\u{1F9B3}", ":white_hair:"),
];

/// The skin-tone parts of a name, as the server removes them.
const TONES: &[&str] = &[
    "_light_skin_tone",
    "_medium-light_skin_tone",
    "_medium_skin_tone",
    "_medium-dark_skin_tone",
    "_dark_skin_tone",
];

/// A CLDR name as a shortcode: `flag: ` dropped, `" - "` → `"-"`, `:` `,` `“` `”` dropped,
/// spaces → `_`.
fn alias_of_name(name: &str) -> String {
    let name = name
        .strip_prefix("flag: ")
        .unwrap_or(name)
        .replace(" - ", "-");
    let mut out = String::with_capacity(name.len() + 2);
    out.push(':');
    for c in name.chars() {
        match c {
            ':' | ',' | '\u{201C}' | '\u{201D}' => {}
            ' ' => out.push('_'),
            c => out.push(c),
        }
    }
    out.push(':');
    out
}

/// Removes every skin-tone part, left to right.
fn detone_alias(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut rest = alias;
    'outer: while let Some(c) = rest.chars().next() {
        if c == '_' {
            for t in TONES {
                if let Some(after) = rest.strip_prefix(t) {
                    rest = after;
                    continue 'outer;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn without_variation_selectors(s: &str) -> String {
    s.chars().filter(|c| *c != '\u{FE0F}').collect()
}

/// Every emoji (all skin tones) by alias, for mapping a detoned alias back to an emoji.
fn by_alias() -> &'static HashMap<String, &'static str> {
    static MAP: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::new();
        for e in emojis::iter() {
            match e.skin_tones() {
                Some(tones) => {
                    for t in tones {
                        map.insert(alias_of_name(t.name()), t.as_str());
                    }
                }
                None => {
                    map.insert(alias_of_name(e.name()), e.as_str());
                }
            }
        }
        for (e, alias) in COMPONENTS {
            map.insert((*alias).to_string(), *e);
        }
        map
    })
}

/// The alias of `s` when `s` is exactly one emoji (fully, minimally or un-qualified).
fn alias_of(s: &str) -> Option<String> {
    if let Some((_, alias)) = COMPONENTS.iter().find(|(e, _)| *e == s) {
        return Some((*alias).to_string());
    }
    let e = emojis::get(s)?;
    let bare = without_variation_selectors(s);
    // The crate's lookup of some unqualified multi-tone sequences lands on a sibling tone;
    // pick the variant that really is `s`.
    let e = if without_variation_selectors(e.as_str()) == bare {
        e
    } else {
        e.skin_tones()?
            .find(|t| without_variation_selectors(t.as_str()) == bare)?
    };
    Some(alias_of_name(e.name()))
}

/// The names the server adds to a reaction, or `None` when `s` is not exactly one emoji.
pub(crate) fn reaction_names(s: &str) -> Option<ReactionNames> {
    let alias = alias_of(s)?;
    let detoned_alias = detone_alias(&alias);
    let detoned = by_alias()
        .get(&detoned_alias)
        .map_or_else(|| detoned_alias.clone(), |e| (*e).to_string());
    Some(ReactionNames {
        alias,
        detoned,
        detoned_alias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> (String, String, String) {
        let n = reaction_names(s).unwrap_or_else(|| panic!("{s:?} is one emoji"));
        (n.alias, n.detoned, n.detoned_alias)
    }

    #[test]
    fn names_match_the_python_emoji_package() {
        let cases = [
            ("👍", ":thumbs_up:", "👍", ":thumbs_up:"),
            ("👍🏽", ":thumbs_up_medium_skin_tone:", "👍", ":thumbs_up:"),
            ("❤", ":red_heart:", "❤\u{FE0F}", ":red_heart:"),
            ("❤\u{FE0F}", ":red_heart:", "❤\u{FE0F}", ":red_heart:"),
            ("🇫🇷", ":France:", "🇫🇷", ":France:"),
            ("🇨🇩", ":Congo-Kinshasa:", "🇨🇩", ":Congo-Kinshasa:"),
            ("🕛", ":twelve_o’clock:", "🕛", ":twelve_o’clock:"),
            ("🏽", ":medium_skin_tone:", "🏽", ":medium_skin_tone:"),
            ("🦲", ":bald:", "🦲", ":bald:"),
            ("👌", ":OK_hand:", "👌", ":OK_hand:"),
            (
                "👨🏿\u{200D}❤\u{200D}👨🏿",
                ":couple_with_heart_man_man_dark_skin_tone:",
                "👨\u{200D}❤\u{FE0F}\u{200D}👨",
                ":couple_with_heart_man_man:",
            ),
            // No emoji is named `couple_with_heart_person_person`: the name is kept.
            (
                "🧑🏿\u{200D}❤\u{FE0F}\u{200D}🧑🏻",
                ":couple_with_heart_person_person_dark_skin_tone_light_skin_tone:",
                ":couple_with_heart_person_person:",
                ":couple_with_heart_person_person:",
            ),
        ];
        for (e, alias, detoned, detoned_alias) in cases {
            assert_eq!(
                names(e),
                (
                    alias.to_string(),
                    detoned.to_string(),
                    detoned_alias.to_string()
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn anything_but_one_emoji_has_no_names() {
        for s in [
            "",
            "x",
            "👍👍",
            "👍 ",
            " 👍",
            "👍x",
            ":thumbs_up:",
            "1",
            "🏽🏽",
        ] {
            assert!(reaction_names(s).is_none(), "{s:?}");
        }
    }
}
