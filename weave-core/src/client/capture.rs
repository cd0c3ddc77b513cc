//! Turning user values into JSON without ever recursing deeper than [`MAX_DEPTH`].
//!
//! `serde_json::to_value` recurses once per nesting level, so a deeply nested value overflows
//! the stack and aborts the process — tracing must never do that. [`to_value_capped`] wraps
//! the serializer so that a value reaching [`MAX_DEPTH`] is replaced by the depth marker
//! (`{"_weave": {"error": "<EXCEEDS_MAX_DEPTH>"}}`) instead of being descended into. The
//! result is at most `MAX_DEPTH` levels deep, so every later clone, serialisation and drop of
//! it is shallow too.

use serde::ser::{self, Serialize, Serializer};
use serde_json::Value;

use crate::limits::{too_deep_marker, MAX_DEPTH};

/// `serde_json::to_value`, with nesting capped at [`MAX_DEPTH`].
pub(crate) fn to_value_capped<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Value, serde_json::Error> {
    Capped { value, depth: 0 }.serialize(serde_json::value::Serializer)
}

struct Capped<'a, T: ?Sized> {
    value: &'a T,
    depth: usize,
}

impl<T: Serialize + ?Sized> Serialize for Capped<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.depth >= MAX_DEPTH {
            return too_deep_marker().serialize(s);
        }
        self.value.serialize(DepthSerializer {
            inner: s,
            depth: self.depth,
        })
    }
}

fn capped<T: ?Sized>(value: &T, depth: usize) -> Capped<'_, T> {
    Capped { value, depth }
}

struct DepthSerializer<S> {
    inner: S,
    depth: usize,
}

/// The compound serializers, passing `depth + 1` to their elements.
struct Compound<C> {
    inner: C,
    depth: usize,
}

macro_rules! forward_scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.inner.$method(v)
        }
    )*};
}

impl<S: Serializer> Serializer for DepthSerializer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&capped(v, self.depth))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, i, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_struct(name, &capped(v, self.depth))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, i, variant, &capped(v, self.depth + 1))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_seq(len)?,
            depth: self.depth + 1,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_tuple(len)?,
            depth: self.depth + 1,
        })
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_tuple_struct(name, len)?,
            depth: self.depth + 1,
        })
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_tuple_variant(name, i, variant, len)?,
            depth: self.depth + 2,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_map(len)?,
            depth: self.depth + 1,
        })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_struct(name, len)?,
            depth: self.depth + 1,
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_struct_variant(name, i, variant, len)?,
            depth: self.depth + 2,
        })
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
                self.inner.$method(&capped(v, self.depth))
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), C::Error> {
        // Keys are strings in JSON (serde_json rejects anything else), so they cannot nest:
        // never cap them, or a key at the limit would become the marker object and fail.
        self.inner.serialize_key(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.inner.serialize_value(&capped(v, self.depth))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

macro_rules! compound_struct {
    ($trait:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), C::Error> {
                self.inner.serialize_field(key, &capped(v, self.depth))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.inner.skip_field(key)
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}
compound_struct!(SerializeStruct);
compound_struct!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A user type nested arbitrarily deep, built and dropped without recursion.
    struct Deep(Option<Box<Deep>>);
    impl Serialize for Deep {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match &self.0 {
                None => s.serialize_u8(1),
                Some(inner) => {
                    use ser::SerializeSeq;
                    let mut seq = s.serialize_seq(Some(1))?;
                    seq.serialize_element(inner.as_ref())?;
                    seq.end()
                }
            }
        }
    }
    impl Drop for Deep {
        fn drop(&mut self) {
            let mut next = self.0.take();
            while let Some(mut b) = next {
                next = b.0.take();
            }
        }
    }

    #[test]
    fn a_million_levels_are_capped_without_recursing() {
        let mut v = Deep(None);
        for _ in 0..1_000_000 {
            v = Deep(Some(Box::new(v)));
        }
        let out = to_value_capped(&v).unwrap();
        let mut depth = 0;
        let mut cur = &out;
        while let Value::Array(items) = cur {
            cur = &items[0];
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(cur, &too_deep_marker());
    }

    #[test]
    fn shallow_values_are_unchanged() {
        #[derive(serde::Serialize)]
        enum E {
            S { a: Vec<Option<u8>> },
            T(u8, String),
        }
        let v = json!({"a": [1, {"b": null}], "s": "x", "f": 1.5});
        assert_eq!(to_value_capped(&v).unwrap(), v);
        // Maps at the limit keep their keys; only their values become the marker.
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH + 5 {
            deep = json!({ "k": deep });
        }
        let out = to_value_capped(&deep).unwrap();
        let mut cur = &out;
        for _ in 0..MAX_DEPTH {
            cur = &cur["k"];
        }
        assert_eq!(cur, &too_deep_marker());
        let e = vec![
            E::S {
                a: vec![Some(1), None],
            },
            E::T(2, "y".into()),
        ];
        assert_eq!(
            to_value_capped(&e).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(
            to_value_capped(&bad).is_err(),
            "non-string keys still fail as in serde_json"
        );
    }
}
