//! Turning user values into JSON without ever recursing deeper than [`MAX_DEPTH`].
//!
//! `serde_json::to_value` recurses once per nesting level, so a deeply nested value overflows
//! the stack and aborts the process — tracing must never do that. [`to_value_capped`] wraps
//! the serializer so that a value reaching [`MAX_DEPTH`] is replaced by the depth marker
//! (`{"_weave": {"error": "<EXCEEDS_MAX_DEPTH>"}}`) instead of being descended into. The
//! result is at most `MAX_DEPTH` levels deep, so every later clone, serialisation and drop of
//! it is shallow too.
//!
//! [`write_capped`] writes JSON text the same way (an op's arguments are captured straight
//! to text on the traced thread: one buffer, however large the value). It can also redact
//! [`REDACT_KEYS`](super::REDACT_KEYS) as it writes: a struct field or map key named like one
//! has its value written as [`REDACTED_VALUE`] instead. The one shape it cannot redact as it
//! goes (a tuple or struct enum variant named like a redacted key, whose value has begun
//! when the name is known) is flagged, and [`redact_text`] then redacts the finished text.

use std::cell::{Cell, RefCell};

use serde::ser::{self, Serialize, Serializer};
use serde_json::Value;

use super::JsonMap;
use crate::limits::{too_deep_marker, MAX_DEPTH};
use crate::redact::{is_redacted_key, redact_inputs_in_place, REDACTED_VALUE};

/// `serde_json::to_value`, with nesting capped at [`MAX_DEPTH`].
pub(crate) fn to_value_capped<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Value, serde_json::Error> {
    capped(value, 0, None).serialize(serde_json::value::Serializer)
}

/// JSON text being written by [`write_capped`]: the buffer, shared between serde_json's
/// writer and the fast path for plain strings (see [`DepthSerializer::serialize_str`]).
#[derive(Debug, Default)]
pub(crate) struct TextOut {
    pub(crate) buf: RefCell<Vec<u8>>,
    /// Set while serde_json writes a string this module has already written.
    skip_string: Cell<bool>,
    /// Set when the text still needs [`redact_text`].
    pub(crate) redact_again: Cell<bool>,
}

impl TextOut {
    /// Writes after what `buf` holds.
    pub(crate) fn new(buf: Vec<u8>) -> Self {
        TextOut {
            buf: RefCell::new(buf),
            ..TextOut::default()
        }
    }
}

/// serde_json's writer into a [`TextOut`].
struct SharedBuf<'a>(&'a TextOut);

impl std::io::Write for SharedBuf<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.buf.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.buf.borrow_mut().extend_from_slice(bytes);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// serde_json's compact format, except that a string already written by the fast path is
/// not written again (its quotes are skipped; its contents are empty).
struct TextFormatter<'a>(&'a TextOut);

impl serde_json::ser::Formatter for TextFormatter<'_> {
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.0.skip_string.get() {
            return Ok(());
        }
        w.write_all(b"\"")
    }
    fn end_string<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.0.skip_string.get() {
            return Ok(());
        }
        w.write_all(b"\"")
    }
}

/// Whether `s` is written in JSON as it is, between quotes: no control character, quote or
/// backslash (serde_json escapes nothing else). The test of a block has no early exit, so
/// the compiler makes it a vector loop; blocks give the early exit.
pub(crate) fn is_plain(s: &str) -> bool {
    s.as_bytes().chunks(64).all(|block| {
        block
            .iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    })
}

/// Appends the JSON string of `s`, which [`is_plain`]: the text between quotes, as it is.
fn push_plain_string(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Appends `value`'s JSON text to `out`, nested at most `MAX_DEPTH - depth` levels (a value
/// that starts `depth` levels down in a document), with values under redacted keys written as
/// [`REDACTED_VALUE`] (`out.redact_again` is set when the text still needs [`redact_text`]).
/// On an error, `out` may hold part of the value: the caller truncates it.
pub(crate) fn write_capped<T: Serialize + ?Sized>(
    out: &TextOut,
    value: &T,
    depth: usize,
) -> Result<(), serde_json::Error> {
    let mut ser = serde_json::Serializer::with_formatter(SharedBuf(out), TextFormatter(out));
    capped(value, depth, Some(out)).serialize(&mut ser)
}

/// A JSON object's text with [`REDACT_KEYS`](super::REDACT_KEYS) redacted at any depth, the
/// slow way (parsed, redacted, written again): for the rare text [`write_capped`] flagged.
pub(crate) fn redact_text(text: &str) -> String {
    match serde_json::from_str::<JsonMap>(text) {
        Ok(mut m) => {
            redact_inputs_in_place(&mut m);
            serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
        }
        // Not an object (never, for text this module wrote): nothing of it is kept.
        Err(_) => "{}".into(),
    }
}

struct Capped<'a, T: ?Sized> {
    value: &'a T,
    depth: usize,
    /// Writing text (and redacting as it goes) into this buffer.
    text: Option<&'a TextOut>,
}

impl<T: Serialize + ?Sized> Serialize for Capped<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.depth >= MAX_DEPTH {
            return too_deep_marker().serialize(s);
        }
        self.value.serialize(DepthSerializer {
            inner: s,
            depth: self.depth,
            text: self.text,
        })
    }
}

fn capped<'a, T: ?Sized>(value: &'a T, depth: usize, text: Option<&'a TextOut>) -> Capped<'a, T> {
    Capped { value, depth, text }
}

struct DepthSerializer<'a, S> {
    inner: S,
    depth: usize,
    text: Option<&'a TextOut>,
}

/// The compound serializers, passing `depth + 1` to their elements.
struct Compound<'a, C> {
    inner: C,
    depth: usize,
    text: Option<&'a TextOut>,
    /// A map's key just written was a redacted one: its value is written as redacted.
    redact_next: bool,
}

impl<'a, C> Compound<'a, C> {
    fn new(inner: C, depth: usize, text: Option<&'a TextOut>) -> Self {
        Compound {
            inner,
            depth,
            text,
            redact_next: false,
        }
    }

    fn redacts(&self, key: &str) -> bool {
        self.text.is_some() && is_redacted_key(key)
    }
}

macro_rules! forward_scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.inner.$method(v)
        }
    )*};
}

impl<'a, S: Serializer> Serializer for DepthSerializer<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

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
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    /// Text of a plain string is written here, in one copy (serde_json looks at each byte in
    /// turn to escape it: ~5x slower on long prompts), then serde_json is handed an empty
    /// string with its quotes skipped, for its bookkeeping.
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        if let Some(t) = self.text.filter(|_| is_plain(v)) {
            push_plain_string(&mut t.buf.borrow_mut(), v);
            t.skip_string.set(true);
            let r = self.inner.serialize_str("");
            t.skip_string.set(false);
            return r;
        }
        self.inner.serialize_str(v)
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&capped(v, self.depth, self.text))
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
            .serialize_newtype_struct(name, &capped(v, self.depth, self.text))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        // JSON writes it `{variant: value}`: the variant is a key.
        if self.redacts(variant) {
            return self
                .inner
                .serialize_newtype_variant(name, i, variant, REDACTED_VALUE);
        }
        self.inner.serialize_newtype_variant(
            name,
            i,
            variant,
            &capped(v, self.depth + 1, self.text),
        )
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(Compound::new(
            self.inner.serialize_seq(len)?,
            self.depth + 1,
            self.text,
        ))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(Compound::new(
            self.inner.serialize_tuple(len)?,
            self.depth + 1,
            self.text,
        ))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Ok(Compound::new(
            self.inner.serialize_tuple_struct(name, len)?,
            self.depth + 1,
            self.text,
        ))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.flag_variant(variant);
        Ok(Compound::new(
            self.inner.serialize_tuple_variant(name, i, variant, len)?,
            self.depth + 2,
            self.text,
        ))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Compound::new(
            self.inner.serialize_map(len)?,
            self.depth + 1,
            self.text,
        ))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Compound::new(
            self.inner.serialize_struct(name, len)?,
            self.depth + 1,
            self.text,
        ))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.flag_variant(variant);
        Ok(Compound::new(
            self.inner.serialize_struct_variant(name, i, variant, len)?,
            self.depth + 2,
            self.text,
        ))
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<S> DepthSerializer<'_, S> {
    /// Whether a value under `key` is redacted: only in text, for a key named like a secret.
    fn redacts(&self, key: &str) -> bool {
        self.text.is_some() && is_redacted_key(key)
    }

    /// A tuple or struct variant is written `{variant: [..]}` / `{variant: {..}}`: named like
    /// a redacted key, its value must go, which only [`redact_text`] can do.
    fn flag_variant(&self, variant: &str) {
        if let Some(t) = self.text.filter(|_| is_redacted_key(variant)) {
            t.redact_again.set(true);
        }
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
                self.inner.$method(&capped(v, self.depth, self.text))
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

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), C::Error> {
        if self.text.is_some() {
            self.redact_next = k.serialize(KeyIsRedacted).unwrap_or(false);
        }
        // Keys are strings in JSON (serde_json rejects anything else), so they cannot nest:
        // never cap them, or a key at the limit would become the marker object and fail.
        self.inner.serialize_key(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        if std::mem::take(&mut self.redact_next) {
            return self.inner.serialize_value(REDACTED_VALUE);
        }
        self.inner
            .serialize_value(&capped(v, self.depth, self.text))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

macro_rules! compound_struct {
    ($trait:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), C::Error> {
                if self.redacts(key) {
                    return self.inner.serialize_field(key, REDACTED_VALUE);
                }
                self.inner
                    .serialize_field(key, &capped(v, self.depth, self.text))
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

/// Whether a map key is a redacted key: a string (or what JSON writes as one: a char, a
/// unit variant, a newtype around one) named like one. Other keys are not (and serde_json
/// refuses the ones that are not strings or numbers anyway).
struct KeyIsRedacted;

/// Not a string key.
#[derive(Debug)]
struct NotAString;

impl std::fmt::Display for NotAString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a string key")
    }
}
impl std::error::Error for NotAString {}
impl ser::Error for NotAString {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotAString
    }
}

macro_rules! not_redacted {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $ty),*) -> Result<bool, NotAString> {
            Ok(false)
        }
    )*};
}

type NoCompound = ser::Impossible<bool, NotAString>;

impl Serializer for KeyIsRedacted {
    type Ok = bool;
    type Error = NotAString;
    type SerializeSeq = NoCompound;
    type SerializeTuple = NoCompound;
    type SerializeTupleStruct = NoCompound;
    type SerializeTupleVariant = NoCompound;
    type SerializeMap = NoCompound;
    type SerializeStruct = NoCompound;
    type SerializeStructVariant = NoCompound;

    not_redacted!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_char(self, v: char) -> Result<bool, NotAString> {
        Ok(is_redacted_key(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<bool, NotAString> {
        Ok(is_redacted_key(v))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<bool, NotAString> {
        v.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<bool, NotAString> {
        Ok(is_redacted_key(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<bool, NotAString> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotAString> {
        Err(NotAString)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple(self, _: usize) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoCompound, NotAString> {
        Err(NotAString)
    }
}

/// Writes `value`'s JSON text after `buf` when it is a scalar (a number, a boolean, a string,
/// a unit, or one of these in an `Option` or a newtype), and says whether it did; anything
/// else is left to [`write_capped`] and nothing is written. The arguments most ops take are
/// scalars: this skips the depth and redaction wrappers they do not need.
pub(crate) fn write_scalar<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> bool {
    let mark = buf.len();
    match value.serialize(ScalarText(buf)) {
        Ok(()) => true,
        Err(NotAScalar) => {
            buf.truncate(mark);
            false
        }
    }
}

/// The serializer of [`write_scalar`].
struct ScalarText<'a>(&'a mut Vec<u8>);

/// Not a scalar: [`write_capped`] writes it.
#[derive(Debug)]
struct NotAScalar;

impl std::fmt::Display for NotAScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a scalar")
    }
}
impl std::error::Error for NotAScalar {}
impl ser::Error for NotAScalar {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotAScalar
    }
}

type NoScalarCompound = ser::Impossible<(), NotAScalar>;

macro_rules! scalar_via_serde_json {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<(), NotAScalar> {
            // Numbers and booleans always serialise.
            let _ = serde_json::to_writer(&mut *self.0, &v);
            Ok(())
        }
    )*};
}

macro_rules! not_a_scalar {
    ($($method:ident($($ty:ty),*) -> $ok:ty),* $(,)?) => {$(
        fn $method(self, $(_: $ty),*) -> Result<$ok, NotAScalar> {
            Err(NotAScalar)
        }
    )*};
}

impl Serializer for ScalarText<'_> {
    type Ok = ();
    type Error = NotAScalar;
    type SerializeSeq = NoScalarCompound;
    type SerializeTuple = NoScalarCompound;
    type SerializeTupleStruct = NoScalarCompound;
    type SerializeTupleVariant = NoScalarCompound;
    type SerializeMap = NoScalarCompound;
    type SerializeStruct = NoScalarCompound;
    type SerializeStructVariant = NoScalarCompound;

    scalar_via_serde_json!(
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
    );

    fn serialize_str(self, v: &str) -> Result<(), NotAScalar> {
        if is_plain(v) {
            push_plain_string(self.0, v);
        } else {
            // A `str` always serialises.
            let _ = serde_json::to_writer(&mut *self.0, v);
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), NotAScalar> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), NotAScalar> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotAScalar> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotAScalar> {
        self.serialize_str(variant)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), NotAScalar> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), NotAScalar> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotAScalar> {
        Err(NotAScalar)
    }
    not_a_scalar!(
        serialize_bytes(&[u8]) -> (),
        serialize_seq(Option<usize>) -> NoScalarCompound,
        serialize_tuple(usize) -> NoScalarCompound,
        serialize_tuple_struct(&'static str, usize) -> NoScalarCompound,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> NoScalarCompound,
        serialize_map(Option<usize>) -> NoScalarCompound,
        serialize_struct(&'static str, usize) -> NoScalarCompound,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> NoScalarCompound,
    );
}

/// A value as JSON, nesting capped at [`crate::limits::MAX_DEPTH`]; a value whose `Serialize`
/// fails is recorded as a readable placeholder.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Value {
    to_value_capped(value).unwrap_or_else(|e| {
        Value::String(format!(
            "<unserializable {}: {e}>",
            std::any::type_name::<T>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_written_directly_and_the_rest_is_left_alone() {
        #[derive(serde::Serialize)]
        struct Id(u32);
        #[derive(serde::Serialize)]
        enum Mode {
            Fast,
        }
        let text = |v: &dyn erased::Scalar| {
            let mut buf = b"x".to_vec();
            let wrote = v.write(&mut buf);
            (wrote, String::from_utf8(buf).unwrap())
        };
        assert_eq!(text(&7u64), (true, "x7".into()));
        assert_eq!(text(&-3i8), (true, "x-3".into()));
        assert_eq!(text(&f64::NAN), (true, "xnull".into()));
        assert_eq!(text(&"plain"), (true, "x\"plain\"".into()));
        assert_eq!(text(&"q\"\n"), (true, r#"x"q\"\n""#.into()));
        assert_eq!(text(&Some(Id(4))), (true, "x4".into()));
        assert_eq!(text(&None::<u8>), (true, "xnull".into()));
        assert_eq!(text(&Mode::Fast), (true, "x\"Fast\"".into()));
        assert_eq!(text(&vec![1, 2]), (false, "x".into()));
        assert_eq!(text(&Some(json!({"a": 1}))), (false, "x".into()));
    }

    mod erased {
        pub(super) trait Scalar {
            fn write(&self, buf: &mut Vec<u8>) -> bool;
        }
        impl<T: serde::Serialize> Scalar for T {
            fn write(&self, buf: &mut Vec<u8>) -> bool {
                super::write_scalar(buf, self)
            }
        }
    }

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

    fn text_of<T: Serialize + ?Sized>(v: &T) -> String {
        let out = TextOut::default();
        write_capped(&out, v, 0).unwrap();
        String::from_utf8(out.buf.into_inner()).unwrap()
    }

    #[test]
    fn text_is_what_serde_json_writes_for_plain_and_escaped_strings() {
        let mut strings: Vec<String> = [
            "",
            "a",
            "plain ascii text",
            "quote \" inside",
            "back\\slash",
            "tab\tnew\nline",
            "\u{0}\u{1f}\u{7f}",
            "héllo wörld ✓ 🦀",
            "/slashes/ stay",
            "\u{2028}\u{2029}",
        ]
        .map(String::from)
        .into();
        // Every special byte at every position of a word and its remainder.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '~', 'é'] {
            for len in 0..20 {
                for at in 0..len {
                    let mut s: String = "x".repeat(len);
                    s.replace_range(at..at + 1, &special.to_string());
                    strings.push(s);
                }
            }
        }
        for s in &strings {
            assert_eq!(text_of(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
        let v = json!({"a": strings, "b": [1, 2.5, null, true], "c": {"d\"": "e\n"}});
        assert_eq!(text_of(&v), serde_json::to_string(&v).unwrap());
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
