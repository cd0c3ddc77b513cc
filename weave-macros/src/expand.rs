//! Code generation: the function rewritten so that every invocation is a Weave call.
//!
//! [`expand`] emits the op's site (a `static` built once), the capture of the arguments and
//! the call's span, then one of three body shapes:
//! - an `async fn`: the body runs as a future inside `run_async`;
//! - an `#[async_trait]` method: the boxed future's body is traced, from its first poll;
//! - any other function: the body is a closure run by `run_sync`, or called directly when
//!   tracing is off.
//!
//! Everything generated is named through `::weave::__private`.

use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Type};

use crate::async_trait::{async_trait_body, future_output};
use crate::attr::{Args, DisplayName};
use crate::inputs::inputs;
use crate::return_type::{infer_impl_trait, is_result};

/// The function `func`, traced as the op that `args` describe, with `source` as its code.
pub(crate) fn expand(args: Args, func: ItemFn, source: String) -> syn::Result<TokenStream2> {
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
    let span = quote!(|__weave_id| #rt::op_span!(#name, __weave_id));
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
