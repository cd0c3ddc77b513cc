//! Parsing the attribute's arguments: `#[weave::op(name = "..", skip(a, b), kind = "llm", ..)]`.
//!
//! [`parse_args`] turns the tokens between the parentheses into [`Args`], checking each value
//! where it is written (a name's length, a known kind, a rate from 0 to 1, an option given
//! once), so that an error points at the token at fault. Nothing here looks at the function.

use proc_macro2::TokenStream as TokenStream2;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Ident, LitFloat, LitInt, LitStr, Path};

/// The op kinds the Python SDK knows (`weave.op(kind=...)`).
const KINDS: &[&str] = &["agent", "llm", "tool", "search", "guardrail", "scorer"];

/// The attribute's arguments, as written; an option left out is `None` (or empty).
#[derive(Default)]
pub(crate) struct Args {
    /// `name = ".."`: the op's name, instead of the function's.
    pub(crate) name: Option<LitStr>,
    /// `skip(a, b)`: arguments left out of the call's inputs.
    pub(crate) skip: Vec<Ident>,
    /// `display_name = ..`: the call's display name.
    pub(crate) display_name: Option<DisplayName>,
    /// `postprocess_inputs = path`: rewrites the inputs before they are recorded.
    pub(crate) postprocess_inputs: Option<Path>,
    /// `postprocess_output = path`: rewrites the output before it is recorded.
    pub(crate) postprocess_output: Option<Path>,
    /// `sample_rate = 0.5`: the share of calls traced.
    pub(crate) sample_rate: Option<f64>,
    /// `kind = "llm"`: one of [`KINDS`].
    pub(crate) kind: Option<LitStr>,
}

/// A call's display name: `display_name = "text"` or `display_name = path::to_fn`.
pub(crate) enum DisplayName {
    Static(LitStr),
    Fn(Path),
}

/// Parses the attribute's arguments (the tokens inside `#[weave::op(..)]`).
pub(crate) fn parse_args(ts: TokenStream2) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        macro_rules! once {
            ($field:expr) => {
                if $field.is_some() {
                    return Err(meta.error(format!("`{key}` is given twice")));
                }
            };
        }
        match key.as_str() {
            "name" => {
                once!(args.name);
                let s: LitStr = meta.value()?.parse()?;
                let v = s.value();
                if v.trim().is_empty() || v.chars().count() > 128 {
                    return Err(syn::Error::new(
                        s.span(),
                        "the op name must be 1 to 128 characters",
                    ));
                }
                args.name = Some(s);
            }
            "skip" => {
                if !args.skip.is_empty() {
                    return Err(meta.error("`skip` is given twice"));
                }
                let empty = meta
                    .input
                    .cursor()
                    .group(proc_macro2::Delimiter::Parenthesis)
                    .is_some_and(|(inside, _, _)| inside.eof());
                if empty {
                    meta.input.parse::<proc_macro2::TokenTree>()?; // so the error covers `skip()`
                    return Err(meta.error("`skip` needs at least one argument name: skip(a, b)"));
                }
                meta.parse_nested_meta(|inner| {
                    if let Some(id) = inner.path.get_ident() {
                        args.skip.push(id.clone());
                        Ok(())
                    } else if inner.path.is_ident("self") {
                        args.skip.push(Ident::new("self", inner.path.span()));
                        Ok(())
                    } else {
                        Err(inner.error("`skip` takes argument names: skip(a, b)"))
                    }
                })?;
            }
            "display_name" => {
                once!(args.display_name);
                let value = meta.value()?;
                if value.peek(LitStr) {
                    args.display_name = Some(DisplayName::Static(value.parse()?));
                } else {
                    let p: Path = value.parse().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "`display_name` takes a string or a path to a `fn(&weave::Call) -> String`",
                        )
                    })?;
                    args.display_name = Some(DisplayName::Fn(p));
                }
            }
            "postprocess_inputs" => {
                once!(args.postprocess_inputs);
                args.postprocess_inputs = Some(meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`postprocess_inputs` takes a path to a function")
                })?);
            }
            "postprocess_output" => {
                once!(args.postprocess_output);
                args.postprocess_output = Some(meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`postprocess_output` takes a path to a function")
                })?);
            }
            "sample_rate" => {
                once!(args.sample_rate);
                let value = meta.value()?;
                let (v, span) = if value.peek(LitFloat) {
                    let l: LitFloat = value.parse()?;
                    (l.base10_parse::<f64>()?, l.span())
                } else if value.peek(LitInt) {
                    let l: LitInt = value.parse()?;
                    (l.base10_parse::<f64>()?, l.span())
                } else {
                    return Err(value.error("`sample_rate` takes a number from 0.0 to 1.0"));
                };
                if !(0.0..=1.0).contains(&v) {
                    return Err(syn::Error::new(
                        span,
                        "`sample_rate` must be from 0.0 to 1.0",
                    ));
                }
                args.sample_rate = Some(v);
            }
            "kind" => {
                once!(args.kind);
                let s: LitStr = meta.value()?.parse()?;
                if !KINDS.contains(&s.value().as_str()) {
                    return Err(syn::Error::new(
                        s.span(),
                        format!("unknown op kind; expected one of {}", KINDS.join(", ")),
                    ));
                }
                args.kind = Some(s);
            }
            _ => {
                return Err(meta.error(
                    "unknown option; expected name, skip, display_name, postprocess_inputs, \
                     postprocess_output, sample_rate or kind",
                ))
            }
        }
        Ok(())
    });
    parser.parse2(ts)?;
    Ok(args)
}
