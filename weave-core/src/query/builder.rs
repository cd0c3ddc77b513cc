//! A typed builder for queries.
//!
//! Start from [`field`] (a `$getField`) or [`lit`] (a `$literal`) and chain comparisons and
//! boolean combinators; plain Rust values (`&str`, numbers, `bool`, `serde_json::Value`) are
//! accepted wherever an operand is expected.
//!
//! ```
//! use weave_core::query::{field, Query};
//! let q = Query::new(
//!     field("op_name").contains("llm").case_insensitive()
//!         .or(field("summary.weave.status").in_(["error", "descendant_error"]))
//!         .and(field("inputs.temperature").as_double().lte(0.5)),
//! );
//! let back: Query = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
//! assert_eq!(q, back);
//! ```

use serde_json::Value;

use super::{ConvertTo, Operand, Operation};

/// An operand under construction; see the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(pub Operand);

/// `{"$getField": path}`: a column, a dotted JSON path, or a computed `summary.weave.*` field.
pub fn field(path: impl Into<String>) -> Expr {
    Expr(Operand::GetField(path.into()))
}

/// `{"$literal": value}`.
pub fn lit(value: impl Into<Value>) -> Expr {
    Expr(Operand::Literal(value.into()))
}

/// Anything usable as an operand: an [`Expr`] or a plain value (a literal).
pub trait IntoOperand {
    /// The operand.
    fn into_operand(self) -> Operand;
}

impl IntoOperand for Expr {
    fn into_operand(self) -> Operand {
        self.0
    }
}

impl IntoOperand for Operand {
    fn into_operand(self) -> Operand {
        self
    }
}

macro_rules! literal_operand {
    ($($t:ty),*) => {$(
        impl IntoOperand for $t {
            fn into_operand(self) -> Operand {
                Operand::Literal(Value::from(self))
            }
        }
    )*};
}
literal_operand!(&str, String, bool, i32, i64, u32, u64, f32, f64, Value);

impl From<Operation> for Expr {
    fn from(op: Operation) -> Self {
        Expr(Operand::Operation(Box::new(op)))
    }
}

impl Expr {
    fn op(op: Operation) -> Expr {
        Expr::from(op)
    }
    /// `$eq`.
    pub fn eq(self, other: impl IntoOperand) -> Expr {
        Expr::op(Operation::Eq(self.0, other.into_operand()))
    }
    /// `$not $eq`.
    pub fn ne(self, other: impl IntoOperand) -> Expr {
        self.eq(other).not()
    }
    /// `$eq` against `null`: the value is null or missing.
    pub fn is_null(self) -> Expr {
        Expr::op(Operation::Eq(self.0, Operand::Literal(Value::Null)))
    }
    /// `$gt`.
    pub fn gt(self, other: impl IntoOperand) -> Expr {
        Expr::op(Operation::Gt(self.0, other.into_operand()))
    }
    /// `$gte`.
    pub fn gte(self, other: impl IntoOperand) -> Expr {
        Expr::op(Operation::Gte(self.0, other.into_operand()))
    }
    /// `$lt`.
    pub fn lt(self, other: impl IntoOperand) -> Expr {
        Expr::op(Operation::Lt(self.0, other.into_operand()))
    }
    /// `$lte`.
    pub fn lte(self, other: impl IntoOperand) -> Expr {
        Expr::op(Operation::Lte(self.0, other.into_operand()))
    }
    /// `$in`: equal to one of `items`.
    pub fn in_<I: IntoOperand>(self, items: impl IntoIterator<Item = I>) -> Expr {
        Expr::op(Operation::In(
            self.0,
            items.into_iter().map(IntoOperand::into_operand).collect(),
        ))
    }
    /// `$contains`: the string contains `substr` (case-sensitive; chain
    /// [`case_insensitive`](Expr::case_insensitive) to ignore case).
    pub fn contains(self, substr: impl IntoOperand) -> Expr {
        Expr::op(Operation::Contains {
            input: self.0,
            substr: substr.into_operand(),
            case_insensitive: false,
        })
    }
    /// Makes a `$contains` case-insensitive; no effect on other expressions.
    pub fn case_insensitive(self) -> Expr {
        match self.0 {
            Operand::Operation(op) => match *op {
                Operation::Contains { input, substr, .. } => Expr::op(Operation::Contains {
                    input,
                    substr,
                    case_insensitive: true,
                }),
                other => Expr::op(other),
            },
            other => Expr(other),
        }
    }
    /// `$convert` to `to`.
    pub fn convert(self, to: ConvertTo) -> Expr {
        Expr(Operand::Convert(Box::new(self.0), to))
    }
    /// `$convert` to `double`.
    pub fn as_double(self) -> Expr {
        self.convert(ConvertTo::Double)
    }
    /// `$convert` to `int`.
    pub fn as_int(self) -> Expr {
        self.convert(ConvertTo::Int)
    }
    /// `$convert` to `string`.
    pub fn as_string(self) -> Expr {
        self.convert(ConvertTo::String)
    }
    /// `$convert` to `bool`.
    pub fn as_bool(self) -> Expr {
        self.convert(ConvertTo::Bool)
    }
    /// `$convert` to `exists`: whether the field is present.
    pub fn exists(self) -> Expr {
        self.convert(ConvertTo::Exists)
    }
    /// `$and`; chained `and`s flatten into one `$and`.
    pub fn and(self, other: impl Into<Expr>) -> Expr {
        let other = other.into().0;
        match self.0 {
            Operand::Operation(op) if matches!(*op, Operation::And(_)) => {
                let Operation::And(mut ops) = *op else {
                    unreachable!()
                };
                ops.push(other);
                Expr::op(Operation::And(ops))
            }
            me => Expr::op(Operation::And(vec![me, other])),
        }
    }
    /// `$or`; chained `or`s flatten into one `$or`.
    pub fn or(self, other: impl Into<Expr>) -> Expr {
        let other = other.into().0;
        match self.0 {
            Operand::Operation(op) if matches!(*op, Operation::Or(_)) => {
                let Operation::Or(mut ops) = *op else {
                    unreachable!()
                };
                ops.push(other);
                Expr::op(Operation::Or(ops))
            }
            me => Expr::op(Operation::Or(vec![me, other])),
        }
    }
    /// `$not`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::op(Operation::Not(Box::new(self.0)))
    }
}
