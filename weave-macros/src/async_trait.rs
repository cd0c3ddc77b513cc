//! Recognising a method that `#[async_trait]` has already expanded: its body ends in
//! `Box::pin(async move { .. })` and it returns `Pin<Box<dyn Future<Output = T> + ..>>`.
//! The op then traces the boxed future's body, and `T` is the value it records.

use syn::{Block, Expr, Stmt, Type};

/// The `T` of a `Pin<Box<dyn Future<Output = T> + ..>>` (the return type `#[async_trait]`
/// gives a method).
pub(crate) fn future_output(ty: &Type) -> Option<&Type> {
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
pub(crate) fn async_trait_body(block: &Block) -> Option<(usize, &syn::ExprAsync)> {
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
