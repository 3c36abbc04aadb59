//! The serde serializer that writes an object's canonical JSON (see [`super`]) in one
//! pass: arrays as they come, an object's members written as they come and put in key
//! order when it closes.

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{self, Serialize};

use super::write_string;

/// Why a value has no canonical JSON (never, for the ledger's own types).
#[derive(Debug, thiserror::Error)]
#[error("no canonical JSON: {0}")]
pub struct NotCanonical(String);

impl ser::Error for NotCanonical {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        NotCanonical(msg.to_string())
    }
}

fn unsupported(what: &str) -> NotCanonical {
    NotCanonical(format!("{what} is not part of the canonical form"))
}

/// Writes one value, as `serde_json::to_value` would shape it, canonically.
pub(super) struct Canonical<'a> {
    pub(super) out: &'a mut Vec<u8>,
}

impl Canonical<'_> {
    fn integer(self, n: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `{"variant":` before a variant's content; [`Canonical::close_variant`] ends it.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
    }

    fn close_variant(out: &mut Vec<u8>) {
        out.push(b'}');
    }
}

/// `serialize_iN` and `serialize_uN` up to 64 bits: the integer in decimal.
macro_rules! integers {
    ($($method:ident: $t:ty),+) => {$(
        fn $method(self, v: $t) -> Result<(), NotCanonical> {
            self.integer(v);
            Ok(())
        }
    )+};
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = NotCanonical;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), NotCanonical> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    fn serialize_i128(self, v: i128) -> Result<(), NotCanonical> {
        // serde_json's tree holds 64-bit integers only.
        match i64::try_from(v) {
            Ok(v) => self.serialize_i64(v),
            Err(_) => self.serialize_u128(v as u128),
        }
    }
    fn serialize_u128(self, v: u128) -> Result<(), NotCanonical> {
        let v = u64::try_from(v).map_err(|_| unsupported("an integer past 64 bits"))?;
        self.serialize_u64(v)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotCanonical> {
        Err(unsupported("a float"))
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotCanonical> {
        Err(unsupported("a float"))
    }
    fn serialize_char(self, v: char) -> Result<(), NotCanonical> {
        write_string(v.encode_utf8(&mut [0u8; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), NotCanonical> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), NotCanonical> {
        // As serde_json: an array of numbers.
        let mut array = self.serialize_seq(Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut array, b)?;
        }
        ser::SerializeSeq::end(array)
    }
    fn serialize_none(self) -> Result<(), NotCanonical> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotCanonical> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotCanonical> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotCanonical> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotCanonical> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotCanonical> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), NotCanonical> {
        self.open_variant(variant);
        value.serialize(Canonical {
            out: &mut *self.out,
        })?;
        Canonical::close_variant(self.out);
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>, NotCanonical> {
        self.out.push(b'[');
        Ok(Array {
            out: self.out,
            empty: true,
            in_variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, NotCanonical> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Array<'a>, NotCanonical> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Array<'a>, NotCanonical> {
        self.open_variant(variant);
        let mut array = self.serialize_seq(Some(len))?;
        array.in_variant = true;
        Ok(array)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, NotCanonical> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, NotCanonical> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, NotCanonical> {
        self.open_variant(variant);
        Ok(Object::new(self.out, true))
    }
}

/// An array being written: `[` is out, each element adds itself and its comma.
pub(super) struct Array<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
    /// Inside `{"variant":`, which [`Array::close`] ends too.
    in_variant: bool,
}

impl Array<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), NotCanonical> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        value.serialize(Canonical {
            out: &mut *self.out,
        })
    }

    fn close(self) -> Result<(), NotCanonical> {
        self.out.push(b']');
        if self.in_variant {
            Canonical::close_variant(self.out);
        }
        Ok(())
    }
}

/// The compound traits an [`Array`] or an [`Object`] implements: each element or member
/// goes to its `element` or `member`, the end to its `close`.
macro_rules! compound {
    ($ty:ident: $($trait:ident::$method:ident($($key:ident)?)),+) => {$(
        impl ser::$trait for $ty<'_> {
            type Ok = ();
            type Error = NotCanonical;
            fn $method<T: ?Sized + Serialize>(
                &mut self,
                $($key: &'static str,)?
                value: &T,
            ) -> Result<(), NotCanonical> {
                compound!(@add self $($key)? value)
            }
            fn end(self) -> Result<(), NotCanonical> {
                self.close()
            }
        }
    )+};
    (@add $self:ident $value:ident) => { $self.element($value) };
    (@add $self:ident $key:ident $value:ident) => { $self.member(Cow::Borrowed($key), $value) };
}

compound!(Array:
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field());

/// An object being written. Its members' values are written to `out` as they come,
/// in the order serde gives them; [`Object::close`] puts them in key order.
pub(super) struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Where the members' values begin in `out`.
    start: usize,
    /// Each member's key and where its value lies in `out`.
    members: Vec<(Cow<'static, str>, Range<usize>)>,
    /// A map's key, until its value comes.
    key: Option<String>,
    /// Inside `{"variant":`, which [`Object::close`] ends too.
    in_variant: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, in_variant: bool) -> Object<'a> {
        Object {
            start: out.len(),
            out,
            members: Vec::new(),
            key: None,
            in_variant,
        }
    }

    fn member<T: ?Sized + Serialize>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), NotCanonical> {
        let from = self.out.len();
        value.serialize(Canonical {
            out: &mut *self.out,
        })?;
        self.members.push((key, from..self.out.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), NotCanonical> {
        // Stable, then the last of equal keys kept: what a JSON map built from the
        // members in order holds.
        self.members
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.members.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let values = self.out.split_off(self.start);
        self.out.push(b'{');
        for (i, (key, at)) in self.members.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_string(key, self.out);
            self.out.push(b':');
            self.out
                .extend_from_slice(&values[at.start - self.start..at.end - self.start]);
        }
        self.out.push(b'}');
        if self.in_variant {
            Canonical::close_variant(self.out);
        }
        Ok(())
    }
}

compound!(Object:
    SerializeStruct::serialize_field(key),
    SerializeStructVariant::serialize_field(key));

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), NotCanonical> {
        self.key = Some(map_key(key)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), NotCanonical> {
        let key = self
            .key
            .take()
            .ok_or_else(|| unsupported("a map value without its key"))?;
        self.member(Cow::Owned(key), v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.close()
    }
}

/// A map key as the JSON string serde_json makes of it: a string, or an integer's
/// decimal.
fn map_key<T: ?Sized + Serialize>(key: &T) -> Result<String, NotCanonical> {
    let mut bytes = Vec::new();
    key.serialize(Canonical { out: &mut bytes })?;
    let text = String::from_utf8(bytes).map_err(|_| unsupported("a map key not UTF-8"))?;
    // A string came out quoted (and escaped: read it back); an integer as digits.
    if text.starts_with('"') {
        return serde_json::from_str(&text).map_err(|_| unsupported("a map key"));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Ok(text);
    }
    Err(unsupported("a map key that is not a string or an integer"))
}
