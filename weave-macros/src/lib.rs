//! The `#[weave::op]` attribute macro of weave-rs.
//!
//! This crate is re-exported by the `weave` facade; depend on `weave`, not on this crate.
//! The documentation of the macro is on `weave::op`.
//!
//! Generated code names everything through `::weave::__private`, so users need nothing but
//! `weave` in their `Cargo.toml`. What it does at run time lives in `weave_core::rt`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{
    Block, Expr, FnArg, Ident, ItemFn, LitFloat, LitInt, LitStr, Pat, Path, ReturnType, Stmt, Type,
};

/// The op kinds the Python SDK knows (`weave.op(kind=...)`).
const KINDS: &[&str] = &["agent", "llm", "tool", "search", "guardrail", "scorer"];

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

// ---------------------------------------------------------------------------------------
// Arguments

#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    skip: Vec<Ident>,
    display_name: Option<DisplayName>,
    postprocess_inputs: Option<Path>,
    postprocess_output: Option<Path>,
    sample_rate: Option<f64>,
    kind: Option<LitStr>,
}

enum DisplayName {
    Static(LitStr),
    Fn(Path),
}

fn parse_args(ts: TokenStream2) -> syn::Result<Args> {
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

// ---------------------------------------------------------------------------------------
// Source capture

/// The function's source text as written, when the compiler can tell where it is: read from
/// the file between the item's first and last token. `None` falls back to the tokens.
fn capture_source(item: &TokenStream) -> Option<String> {
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

fn bracket_balance(s: &str) -> i32 {
    s.chars().fold(0, |n, c| match c {
        '[' => n + 1,
        ']' => n - 1,
        _ => n,
    })
}

// ---------------------------------------------------------------------------------------
// Expansion

/// One captured input: its key and the expression naming it.
struct Input {
    key: String,
    ident: TokenStream2,
}

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

fn inputs(func: &ItemFn, skip_idents: &[Ident]) -> syn::Result<Vec<Input>> {
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

/// `ty` with every `impl Trait` replaced by `_`.
fn infer_impl_trait(ty: &Type) -> Type {
    struct Infer;
    impl syn::visit_mut::VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(it) = ty {
                let underscore = syn::Token![_](it.impl_token.span);
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: underscore,
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Infer, &mut ty);
    ty
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}

/// The `T` of a `Pin<Box<dyn Future<Output = T> + ..>>` (the return type `#[async_trait]`
/// gives a method).
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) => p.path.segments.last().and_then(|s| match &s.arguments {
            syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::Type(t) => future_output(t),
                _ => None,
            }),
            _ => None,
        }),
        Type::TraitObject(t) => t.bounds.iter().find_map(|b| {
            let syn::TypeParamBound::Trait(tb) = b else {
                return None;
            };
            let seg = tb.path.segments.last()?;
            if seg.ident != "Future" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
                return None;
            };
            a.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::AssocType(at) if at.ident == "Output" => Some(&at.ty),
                _ => None,
            })
        }),
        Type::Group(g) => future_output(&g.elem),
        Type::Paren(p) => future_output(&p.elem),
        _ => None,
    }
}

/// The async block of an `#[async_trait]`-expanded method: `Box::pin(async move { .. })` as
/// the body's last expression.
fn async_trait_body(block: &Block) -> Option<(usize, &syn::ExprAsync)> {
    let i = block.stmts.len().checked_sub(1)?;
    let last = &block.stmts[i];
    let Stmt::Expr(Expr::Call(call), None) = last else {
        return None;
    };
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let segs: Vec<_> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if segs.len() < 2 || segs[segs.len() - 2] != "Box" || segs[segs.len() - 1] != "pin" {
        return None;
    }
    if call.args.len() != 1 {
        return None;
    }
    match call.args.first()? {
        Expr::Async(a) if a.capture.is_some() => Some((i, a)),
        _ => None,
    }
}

fn expand(args: Args, func: ItemFn, source: String) -> syn::Result<TokenStream2> {
    if let Some(c) = &func.sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "#[weave::op] cannot trace a `const fn`",
        ));
    }
    let inputs = inputs(&func, &args.skip)?;
    let fn_name = func.sig.ident.to_string();
    let fn_name = fn_name.strip_prefix("r#").unwrap_or(&fn_name).to_string();
    let name = args
        .name
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| fn_name.clone());
    let rt = quote!(::weave::__private::rt);
    let core = quote!(::weave::__private::weave_core);

    // The op, built once.
    let kind = args.kind.as_ref().map(|k| quote!(.kind(#k)));
    let pp_in = args
        .postprocess_inputs
        .as_ref()
        .map(|p| quote_spanned!(p.span()=> .postprocess_inputs(#p)));
    let pp_out = args
        .postprocess_output
        .as_ref()
        .map(|p| quote_spanned!(p.span()=> .postprocess_output(#p)));
    let sample_rate = args.sample_rate.unwrap_or(1.0);
    let site = quote! {
        static __WEAVE_SITE: #rt::OpSite = #rt::OpSite::new(
            || #core::Op::new(#name).code(#source) #kind #pp_in #pp_out,
            #sample_rate,
        );
    };
    let display = match &args.display_name {
        None => quote!(#rt::DisplayNameArg::None),
        Some(DisplayName::Static(s)) => quote!(#rt::DisplayNameArg::Static(#s)),
        Some(DisplayName::Fn(p)) => quote_spanned!(p.span()=> #rt::DisplayNameArg::Fn(#p)),
    };
    let keys = inputs.iter().map(|i| &i.key);
    let idents = inputs.iter().map(|i| &i.ident);
    // A method's op is `Type.method`, as Python names methods by `__qualname__`.
    let is_method = matches!(func.sig.inputs.first(), Some(FnArg::Receiver(_)));
    let self_type = if is_method && args.name.is_none() {
        quote!(::core::option::Option::Some(
            ::core::any::type_name::<Self>()
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    // The arguments' capture and the op's span, as both kinds of body start their call.
    let capture = quote! {
        |__weave_args: &mut #rt::ArgsWriter| {
            #[allow(unused_imports)]
            use #rt::{ViaSerialize as _, ViaDebug as _, ViaNothing as _};
            #(
                (&&&#rt::Capture(&#idents)).__weave_write(
                    __weave_args,
                    const { #rt::ArgKey::new(#keys, ::core::concat!("\"", #keys, "\":")) },
                );
            )*
        }
    };
    let span = quote!(|__weave_id| #rt::tracing::info_span!(#name, weave.call_id = __weave_id));
    let start = quote! {
        #[allow(clippy::used_underscore_binding)]
        let mut __weave_op = if #rt::enabled() {
            __WEAVE_SITE.start(#capture, #display, #self_type, #span)
        } else {
            #rt::OpCall::off()
        };
    };

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &func;
    // `!` cannot be written as a variable's type on stable Rust: a diverging body is run as a
    // `()` closure (it never returns) and the function ends with `unreachable!()`.
    let never = matches!(&sig.output, ReturnType::Type(_, t) if matches!(**t, Type::Never(_)));
    let tail = if never {
        quote!(::std::unreachable!())
    } else {
        quote!(__weave_out)
    };
    let ret_ty: Option<Type> = match &sig.output {
        ReturnType::Default => Some(syn::parse_quote!(())),
        ReturnType::Type(..) if never => Some(syn::parse_quote!(())),
        ReturnType::Type(_, t) => Some((**t).clone()),
    };
    // The return type, with `impl Trait` parts left to inference (`Result<_, E>`), so that
    // `?` in the body still knows its error type.
    let nameable = ret_ty.as_ref().map(infer_impl_trait);
    let nameable = nameable.as_ref();
    let result = ret_ty.as_ref().is_some_and(is_result);
    let finish = |out: TokenStream2, result: bool| {
        if result {
            quote! {
                if __weave_op.is_live() {
                    #[allow(unused_imports)]
                    use #rt::{ViaSerialize as _, ViaDebug as _, ViaNothing as _};
                    #[allow(unused_imports)]
                    use #rt::{ErrViaBoxedError as _, ErrViaError as _, ErrViaDisplay as _, ErrViaDebug as _, ErrViaNothing as _};
                    match &#out {
                        ::std::result::Result::Ok(__weave_v) => {
                            __weave_op.finish(|| (&&&#rt::Capture(__weave_v)).__weave_value())
                        }
                        ::std::result::Result::Err(__weave_e) => {
                            __weave_op.fail(|| (&&&&&#rt::CaptureErr(__weave_e)).__weave_exception())
                        }
                    }
                }
            }
        } else {
            quote! {
                if __weave_op.is_live() {
                    #[allow(unused_imports)]
                    use #rt::{ViaSerialize as _, ViaDebug as _, ViaNothing as _};
                    __weave_op.finish(|| (&&&#rt::Capture(&#out)).__weave_value());
                }
            }
        }
    };
    let allow = quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::let_unit_value,
            clippy::unreachable,
            clippy::empty_loop,
            clippy::redundant_closure_call,
            clippy::needless_return
        )]
    };
    let fake_return = nameable.map(|t| {
        quote! {
            #allow
            if false {
                let __weave_fake: #t = loop {};
                return __weave_fake;
            }
        }
    });
    let annot = nameable.map(|t| quote!(: #t));
    let stmts = &block.stmts;
    // Inner attributes (`#![allow(..)]` at the top of the body) stay at the top of the body.
    let (inner_attrs, attrs): (Vec<_>, Vec<_>) = attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));

    if sig.asyncness.is_some() {
        let fin = finish(quote!(__weave_out), result);
        return Ok(quote! {
            #(#attrs)* #vis #sig {
                #(#inner_attrs)*
                #site
                #start
                #allow
                let __weave_out #annot = __weave_op.run_async(async move {
                    #fake_return
                    #(#stmts)*
                }).await;
                #fin
                #tail
            }
        });
    }

    if let Some((i, async_block)) = async_trait_body(block) {
        // An #[async_trait] method: trace the boxed future's body.
        let before = &block.stmts[..i];
        let inner = &async_block.block;
        // The method's declared return type is now the boxed future's `Output`.
        let result = ret_ty
            .as_ref()
            .and_then(future_output)
            .is_some_and(is_result);
        let fin = finish(quote!(__weave_out), result);
        return Ok(quote! {
            #(#attrs)* #vis #sig {
                #(#inner_attrs)*
                #site
                #(#before)*
                ::std::boxed::Box::pin(async move {
                    // Started at the first poll, as an `async fn` op is.
                    #start
                    let __weave_out = __weave_op.run_async(async move #inner).await;
                    #fin
                    __weave_out
                })
            }
        });
    }

    let fin = finish(quote!((*__weave_out)), result);
    // Untraced (tracing off, no client), the body is called directly with `None`: the op
    // costs a flag test over the plain function. Traced, the body captures the arguments and
    // starts the call first thing (they were moved into it), inside `run_sync`.
    Ok(quote! {
        #(#attrs)* #vis #sig {
            #(#inner_attrs)*
            #site
            #allow
            let __weave_body = #rt::body(move |__weave_pre: ::core::option::Option<&mut #rt::Prelude>| {
                if let ::core::option::Option::Some(__weave_pre) = __weave_pre {
                    __weave_pre.start(#capture, #span);
                }
                #fake_return
                #(#stmts)*
            });
            if #rt::enabled() {
                #allow
                let __weave_out #annot = #rt::run_sync(
                    &__WEAVE_SITE,
                    #display,
                    #self_type,
                    __weave_body,
                    |__weave_op, __weave_out| { #fin },
                );
                #tail
            } else {
                #allow
                let __weave_out #annot = __weave_body(::core::option::Option::None);
                #tail
            }
        }
    })
}
