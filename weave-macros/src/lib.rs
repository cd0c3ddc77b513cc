//! The `#[weave::op]` attribute macro of weave-rs.
//!
//! This crate is re-exported by the `weave` facade; depend on `weave`, not on this crate.
//! The documentation of the macro is on `weave::op`.
//!
//! Generated code names everything through `::weave::__private`, so users need nothing but
//! `weave` in their `Cargo.toml`. What it does at run time lives in `weave_core::rt`.
//!
//! The crate is laid out by role:
//! - `lib.rs`: the entry point, `op`; on any error it emits the item as written;
//! - `attr`: parsing the attribute's arguments;
//! - `source`: capture of the function's source text;
//! - `inputs`: which arguments are recorded, under which keys;
//! - `return_type`, `async_trait`: reading the declared return type and body shape;
//! - `expand`: code generation for sync, async and `#[async_trait]` bodies.

mod async_trait;
mod attr;
mod expand;
mod inputs;
mod return_type;
mod source;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, ToTokens};
use syn::ItemFn;

use crate::attr::parse_args;
use crate::expand::expand;
use crate::source::capture_source;

/// Turns a function into a Weave op: every invocation becomes a call. See `weave::op`.
///
/// When the attribute's arguments or the item are wrong, the item is emitted as it was
/// written, beside the error: only the attribute is reported, and the function and its
/// callers keep compiling (as `tracing::instrument` does), so one mistake does not bury the
/// user under errors about a function that vanished.
#[proc_macro_attribute]
pub fn op(args: TokenStream, item: TokenStream) -> TokenStream {
    let source = capture_source(&item);
    let item2: TokenStream2 = item.into();
    let with_item = |e: syn::Error| -> TokenStream {
        let err = e.to_compile_error();
        quote!(#err #item2).into()
    };
    let args = match parse_args(args.into()) {
        Ok(a) => a,
        Err(e) => return with_item(e),
    };
    let func: ItemFn = match syn::parse2(item2.clone()) {
        Ok(f) => f,
        Err(_) => {
            // A method declared without a body (in a trait): point at the declaration.
            if let Ok(syn::TraitItemFn {
                sig,
                default: None,
                semi_token: Some(semi),
                ..
            }) = syn::parse2(item2.clone())
            {
                return with_item(syn::Error::new_spanned(
                    quote!(#sig #semi),
                    "#[weave::op] needs a function body; put it on the method in the `impl` block",
                ));
            }
            return with_item(syn::Error::new(
                Span::call_site(),
                "#[weave::op] goes on a function or method with a body",
            ));
        }
    };
    let source = source.unwrap_or_else(|| func.to_token_stream().to_string());
    match expand(args, func, source) {
        Ok(ts) => ts.into(),
        Err(e) => with_item(e),
    }
}
