//! Which of the function's arguments an op records, and under which key.
//!
//! Every binding of every argument pattern is an input, keyed by its name (without `r#`);
//! `self` is keyed `self`. The names in `skip(..)` are left out, and must each name one.

use proc_macro2::TokenStream as TokenStream2;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat};

/// One captured input: its key and the expression naming it.
pub(crate) struct Input {
    pub(crate) key: String,
    pub(crate) ident: TokenStream2,
}

/// Every name that `pat` binds, in order, into `out`.
fn collect_pat(pat: &Pat, out: &mut Vec<Ident>) -> syn::Result<()> {
    match pat {
        Pat::Ident(p) => {
            if let Some((_, sub)) = &p.subpat {
                collect_pat(sub, out)?;
            }
            out.push(p.ident.clone());
        }
        Pat::Tuple(t) => {
            for p in &t.elems {
                collect_pat(p, out)?;
            }
        }
        Pat::TupleStruct(t) => {
            for p in &t.elems {
                collect_pat(p, out)?;
            }
        }
        Pat::Struct(s) => {
            for f in &s.fields {
                collect_pat(&f.pat, out)?;
            }
        }
        Pat::Reference(r) => collect_pat(&r.pat, out)?,
        Pat::Slice(s) => {
            for p in &s.elems {
                collect_pat(p, out)?;
            }
        }
        Pat::Paren(p) => collect_pat(&p.pat, out)?,
        Pat::Type(t) => collect_pat(&t.pat, out)?,
        Pat::Wild(_) | Pat::Rest(_) => {}
        other => {
            return Err(syn::Error::new(
                other.span(),
                "#[weave::op] cannot capture this argument pattern; bind it to a name",
            ))
        }
    }
    Ok(())
}

/// The inputs of `func`, in argument order, without those in `skip(..)`.
pub(crate) fn inputs(func: &ItemFn, skip_idents: &[Ident]) -> syn::Result<Vec<Input>> {
    let mut all: Vec<(String, TokenStream2)> = Vec::new();
    for arg in &func.sig.inputs {
        match arg {
            FnArg::Receiver(r) => all.push(("self".into(), r.self_token.to_token_stream())),
            FnArg::Typed(t) => {
                let mut ids = Vec::new();
                collect_pat(&t.pat, &mut ids)?;
                for id in ids {
                    let key = id.to_string();
                    let key = key.strip_prefix("r#").unwrap_or(&key).to_string();
                    all.push((key, id.to_token_stream()));
                }
            }
        }
    }
    let skip: Vec<String> = skip_idents.iter().map(|s| s.unraw().to_string()).collect();
    for (s, id) in skip.iter().zip(skip_idents) {
        if !all.iter().any(|(k, _)| s == k) {
            return Err(syn::Error::new(
                id.span(),
                format!("`skip({id})`: this function has no argument named `{id}`"),
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|(k, _)| !skip.iter().any(|s| s == k))
        .map(|(key, ident)| Input { key, ident })
        .collect())
}
