//! Capture of the function's source text, for the op's `code`.
//!
//! The text is read from the source file between the item's first and last token, dedented,
//! with the op's own attribute normalised to `#[weave::op]`. When the compiler cannot say
//! where the item is (macro-generated items, doctests), [`capture_source`] gives `None` and
//! the caller falls back to the item's tokens.

use proc_macro::TokenStream;

/// The function's source text as written, when the compiler can tell where it is: read from
/// the file between the item's first and last token. `None` falls back to the tokens.
pub(crate) fn capture_source(item: &TokenStream) -> Option<String> {
    let mut tokens = item.clone().into_iter();
    let first = tokens.next()?.span();
    let last = tokens.last().map(|t| t.span()).unwrap_or(first);
    let file = first.local_file()?;
    if last.local_file()? != file {
        return None;
    }
    let (l0, c0) = (first.start().line(), first.start().column());
    let (l1, c1) = (last.end().line(), last.end().column());
    if l0 == 0 || (l1, c1) <= (l0, c0) {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let indent = c0.saturating_sub(1);
    let mut raw = String::new();
    let mut out = String::new();
    for (i, line) in lines.get(l0 - 1..l1)?.iter().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let to = if i == l1 - l0 {
            c1.saturating_sub(1).min(chars.len())
        } else {
            chars.len()
        };
        // The first line from the first token; the others dedented by the first line's
        // indentation where they have it.
        let (raw_from, from) = if i == 0 {
            (indent, indent)
        } else {
            let ws = chars
                .iter()
                .take(indent)
                .take_while(|c| c.is_whitespace())
                .count();
            (0, ws)
        };
        if from > to || raw_from > to {
            return None;
        }
        raw.extend(&chars[raw_from..to]);
        raw.push('\n');
        out.extend(&chars[from..to]);
        out.push('\n');
    }
    // The slice must really be this item: it starts and ends with the first and last tokens'
    // own text (doctests and macro-generated items can point elsewhere).
    let raw = raw.trim_end();
    let (first_text, last_text) = (first.source_text()?, last.source_text()?);
    if !raw.starts_with(first_text.trim()) || !raw.ends_with(last_text.trim()) {
        return None;
    }
    Some(normalize_attribute(&out))
}

/// The op's attribute, normalised to `#[weave::op]` (as Python normalises its decorator to
/// `@weave.op`), in place when the slice holds it (other attributes came first), else first.
fn normalize_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 14);
    let mut found = false;
    let mut depth: i32 = 0;
    for line in text.lines() {
        let t = line.trim_start();
        if depth > 0 {
            depth += bracket_balance(t);
            continue;
        }
        let ours = t.starts_with("#[weave::op]")
            || t.starts_with("#[weave::op(")
            || t.starts_with("#[op]")
            || t.starts_with("#[op(");
        if !found && ours {
            found = true;
            let indent = &line[..line.len() - t.len()];
            out.push_str(indent);
            out.push_str("#[weave::op]\n");
            depth = bracket_balance(t);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if found {
        out
    } else {
        format!("#[weave::op]\n{text}")
    }
}

/// The opening brackets of `s` less its closing ones.
fn bracket_balance(s: &str) -> i32 {
    s.chars().fold(0, |n, c| match c {
        '[' => n + 1,
        ']' => n - 1,
        _ => n,
    })
}
