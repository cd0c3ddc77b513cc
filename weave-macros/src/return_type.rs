//! Reading the function's declared return type: what the expansion may name, and whether it
//! is a `Result` (whose `Err` is recorded as the call's exception).

use syn::Type;

/// `ty` with every `impl Trait` replaced by `_`.
pub(crate) fn infer_impl_trait(ty: &Type) -> Type {
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

/// Whether `ty` is a `Result` (named `Result`, whatever its path).
pub(crate) fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}
