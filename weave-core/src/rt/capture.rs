//! Argument and output capture: argument names checked (and redacted) when the program is
//! compiled, values written as JSON text on the caller's thread, and the autoref
//! specialisation that picks `Serialize`, else `Debug`, else a placeholder.

use std::fmt::{Debug, Display};

use serde::Serialize;
use serde_json::Value;

use crate::Exception;

// ---------------------------------------------------------------------------------------
// Capturing values without bounds: Serialize, else Debug, else a placeholder.
//
// Autoref specialisation: `(&&&Capture(&x)).__weave_value()` picks the first impl that
// applies, in the order of the receiver types `&&Capture`, `&Capture`, `Capture`; errors
// likewise with `(&&&&&CaptureErr(&e)).__weave_exception()` over five levels.

/// An argument's name, as an op's macro passes it to [`ArgsWriter`]: made in a constant, so
/// that whether its value is redacted (named like one of [`REDACT_KEYS`](crate::REDACT_KEYS))
/// and its quoted text are settled when the program is compiled, not on each call.
#[derive(Clone, Copy, Debug)]
pub struct ArgKey {
    name: &'static str,
    /// `"name":`, when that is the name's JSON text (an identifier's always is).
    quoted: Option<&'static str>,
    redacted: bool,
}

impl ArgKey {
    /// The argument `name`; `quoted` is meant to be `"name":` (the macro writes it with
    /// `concat!`), and is checked here: when it is not exactly that, the name is escaped
    /// as it is written instead.
    pub const fn new(name: &'static str, quoted: &'static str) -> Self {
        ArgKey {
            name,
            quoted: if is_quoted_key(name.as_bytes(), quoted.as_bytes()) {
                Some(quoted)
            } else {
                None
            },
            redacted: crate::redact::is_redacted_key(name),
        }
    }
}

/// Whether `quoted` is `"name":` with nothing in `name` that JSON escapes.
pub(super) const fn is_quoted_key(name: &[u8], quoted: &[u8]) -> bool {
    if quoted.len() != name.len() + 3
        || quoted[0] != b'"'
        || quoted[name.len() + 1] != b'"'
        || quoted[name.len() + 2] != b':'
    {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b < 0x20 || b == b'"' || b == b'\\' || quoted[i + 1] != b {
            return false;
        }
        i += 1;
    }
    true
}

/// An op's arguments, written as the JSON text of an object on the traced thread as they
/// are captured: one buffer, whatever the values (no `Value` tree, no map to hash). Each value
/// is nested at most [`MAX_DEPTH`](crate::limits::MAX_DEPTH) levels deep in the object and
/// redacted as it is written (arguments and keys named like
/// [`REDACT_KEYS`](crate::REDACT_KEYS)), so the text is final: the writer stores it as it is.
#[derive(Debug)]
pub struct ArgsWriter {
    out: crate::client::capture::TextOut,
}

impl ArgsWriter {
    pub(super) fn new() -> Self {
        Self::with_capacity(64)
    }

    /// With room for `capacity` bytes of text.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        ArgsWriter {
            out: crate::client::capture::TextOut::new(buf),
        }
    }

    /// Starts the argument `key`; false when its value is redacted (then already written).
    #[inline]
    fn key(&mut self, key: ArgKey) -> bool {
        self.key_text(key.name, key.quoted, key.redacted)
    }

    /// Starts the argument `name`, written as `quoted` when that is given (its `"name":`,
    /// checked by the caller); false when `redacted` (its value is then already written).
    #[inline]
    pub(super) fn key_text(&mut self, name: &str, quoted: Option<&str>, redacted: bool) -> bool {
        let buf = self.out.buf.get_mut();
        if buf.len() > 1 {
            buf.push(b',');
        }
        match quoted {
            Some(quoted) => buf.extend_from_slice(quoted.as_bytes()),
            None => {
                // A `str` always serialises.
                let _ = serde_json::to_writer(&mut *buf, name);
                buf.push(b':');
            }
        }
        if redacted {
            let _ = serde_json::to_writer(&mut *buf, crate::REDACTED_VALUE);
            return false;
        }
        true
    }

    /// Writes `value` through `serde` after a key [`ArgsWriter::key_text`] started (capped in
    /// depth, redacted); a value that fails to serialise is written as a string saying so.
    pub(super) fn serialize_after_key<T: Serialize + ?Sized>(&mut self, value: &T) {
        if crate::client::capture::write_scalar(self.out.buf.get_mut(), value) {
            return;
        }
        let mark = self.out.buf.get_mut().len();
        if let Err(e) = crate::client::capture::write_capped(&self.out, value, 1) {
            let buf = self.out.buf.get_mut();
            buf.truncate(mark);
            let text = format!("<unserializable {}: {e}>", std::any::type_name::<T>());
            let _ = serde_json::to_writer(&mut *buf, &text);
        }
    }

    /// Writes the argument `key` through `serde`; a value that fails to serialise is
    /// written as a string saying so, naming its type and the error.
    pub fn serialize<T: Serialize + ?Sized>(&mut self, key: ArgKey, value: &T) {
        if self.key(key) {
            self.serialize_after_key(value);
        }
    }

    /// Writes the argument `key` as the string `value`.
    pub fn string(&mut self, key: ArgKey, value: &str) {
        if self.key(key) {
            let _ = serde_json::to_writer(self.out.buf.get_mut(), value);
        }
    }

    /// The object's text.
    pub(super) fn finish(self) -> String {
        let mut buf = self.out.buf.into_inner();
        buf.push(b'}');
        // serde_json writes UTF-8 only, and so does the fast path (from `str`s).
        let text = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if self.out.redact_again.get() {
            return crate::client::capture::redact_text(&text);
        }
        text
    }
}

/// A value to capture (see the module docs).
#[derive(Debug)]
pub struct Capture<'a, T: ?Sized>(pub &'a T);

/// Capture through `serde`.
pub trait ViaSerialize {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}
/// Capture through `Debug`.
pub trait ViaDebug {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}
/// Capture as a placeholder naming the type.
pub trait ViaNothing {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}

impl<T: Serialize + ?Sized> ViaSerialize for &&Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        crate::client::to_json(self.0)
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.serialize(key, self.0);
    }
}
impl<T: Debug + ?Sized> ViaDebug for &Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        Value::String(format!("{:?}", self.0))
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.string(key, &format!("{:?}", self.0));
    }
}
impl<T: ?Sized> ViaNothing for Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        Value::String(placeholder(std::any::type_name::<T>()))
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.string(key, &placeholder(std::any::type_name::<T>()));
    }
}

pub(super) fn placeholder(type_name: &str) -> String {
    format!("<{}>", type_name.trim_start_matches('&'))
}

/// An error to capture (see the module docs): `std::error::Error` (with its source chain),
/// else `Display`, else `Debug`, else a placeholder.
#[derive(Debug)]
pub struct CaptureErr<'a, T: ?Sized>(pub &'a T);

/// Capture through the `std::error::Error` inside a `Box` (`Box<dyn Error + Send + Sync>`,
/// which does not itself implement `Error`).
pub trait ErrViaBoxedError {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `std::error::Error`.
pub trait ErrViaError {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `Display`.
pub trait ErrViaDisplay {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `Debug`.
pub trait ErrViaDebug {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture as a placeholder naming the type.
pub trait ErrViaNothing {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}

pub(super) fn short_type<T: ?Sized>() -> String {
    crate::client::exception::short_type_name(std::any::type_name::<T>())
}

impl<T: std::error::Error + ?Sized> ErrViaBoxedError for &&&&CaptureErr<'_, Box<T>> {
    fn __weave_exception(&self) -> Exception {
        Exception::from_error(&**self.0)
    }
}
impl<T: std::error::Error + ?Sized> ErrViaError for &&&CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::from_error(self.0)
    }
}
impl<T: Display + ?Sized> ErrViaDisplay for &&CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        // `{:#}` gives the whole chain for error types that support it (anyhow, eyre).
        Exception::new(short_type::<T>(), format!("{:#}", self.0))
    }
}
impl<T: Debug + ?Sized> ErrViaDebug for &CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::new(short_type::<T>(), format!("{:?}", self.0))
    }
}
impl<T: ?Sized> ErrViaNothing for CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::new(short_type::<T>(), placeholder(std::any::type_name::<T>()))
    }
}
