//! The `#[backends]` attribute of weave-testkit (re-exported there as
//! `weave_testkit::backends`, which documents it): one `#[test]` per backend for a test
//! function.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, ItemFn, Token};

/// The backends, in the order of the generated tests: (test name, `Suite` variant).
const BACKENDS: [(&str, &str); 3] = [
    ("embedded", "Embedded"),
    ("reference", "Reference"),
    ("served", "Served"),
];

/// On `fn name() { … }`: the function, and `mod name` with one `#[test]` per backend that
/// runs it with `::weave_testkit::run_on`. `#[backends(embedded, served)]` names the
/// backends. See `weave_testkit::backends`.
#[proc_macro_attribute]
pub fn backends(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(out) => out.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let chosen = backends_named(args)?;
    let mut func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if let Some(a) = sig.asyncness {
        return Err(syn::Error::new_spanned(
            a,
            "#[backends] takes a synchronous fn: start a runtime in its body",
        ));
    }
    if !sig.inputs.is_empty() || !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            sig,
            "#[backends] takes a test function: no parameters, no generics",
        ));
    }

    let mut fn_attrs: Vec<Attribute> = Vec::new();
    let mut test_attrs: Vec<Attribute> = Vec::new();
    let mut cfg_attrs: Vec<Attribute> = Vec::new();
    for attr in std::mem::take(&mut func.attrs) {
        let path = attr.path();
        if path.is_ident("test") {
            return Err(syn::Error::new_spanned(
                attr,
                "#[backends] generates the #[test]s: remove this one",
            ));
        } else if path.is_ident("ignore") || path.is_ident("should_panic") {
            test_attrs.push(attr);
        } else if path.is_ident("cfg") {
            cfg_attrs.push(attr.clone());
            fn_attrs.push(attr);
        } else {
            fn_attrs.push(attr);
        }
    }
    func.attrs = fn_attrs;

    let name = &func.sig.ident;
    let output = &func.sig.output;
    let tests = chosen.iter().map(|&(test, variant)| {
        let test = Ident::new(test, name.span());
        let variant = Ident::new(variant, Span::call_site());
        quote_spanned! {name.span()=>
            #[test]
            #(#test_attrs)*
            fn #test() #output {
                ::weave_testkit::run_on(::weave_testkit::Suite::#variant, super::#name)
            }
        }
    });
    let module = format_ident!("{}", name);
    Ok(quote! {
        #func

        #(#cfg_attrs)*
        mod #module {
            #(#tests)*
        }
    })
}

/// The backends `#[backends(…)]` names (all three when it names none), in [`BACKENDS`]
/// order.
fn backends_named(args: TokenStream2) -> syn::Result<Vec<(&'static str, &'static str)>> {
    let names = Punctuated::<Ident, Token![,]>::parse_terminated.parse2(args)?;
    if names.is_empty() {
        return Ok(BACKENDS.to_vec());
    }
    for n in &names {
        if !BACKENDS.iter().any(|(b, _)| n == b) {
            return Err(syn::Error::new_spanned(
                n,
                "unknown backend: #[backends] knows embedded, reference, served",
            ));
        }
        if names.iter().filter(|m| *m == n).count() > 1 {
            return Err(syn::Error::new_spanned(n, "backend named twice"));
        }
    }
    Ok(BACKENDS
        .iter()
        .copied()
        .filter(|(b, _)| names.iter().any(|n| n == b))
        .collect())
}
