//! The one place that knows bincode: record payloads are serde values encoded with one
//! pinned configuration (bincode 2.0.x, `config::standard()`: little-endian, variable-length
//! integers, with a decode limit of the format's record size). A later format version can
//! change codec here without touching the rest of the crate.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::log::format::RECORD_PAYLOAD_BYTES_MAX;
use crate::log::Lsn;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ RECORD_PAYLOAD_BYTES_MAX as usize }>,
>;

const CONFIG: Config =
    bincode::config::standard().with_limit::<{ RECORD_PAYLOAD_BYTES_MAX as usize }>();

/// Encodes a value as a record payload.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| Error::Encode(e.to_string()))
}

/// Appends the encoding of a value to `out` (no intermediate allocation).
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| Error::Encode(e.to_string()))
}

/// bincode with no size limit, for checkpoint files: their size is what bounds them, and
/// their digest is checked before they are decoded.
const CONFIG_UNBOUNDED: bincode::config::Configuration = bincode::config::standard();

/// Encodes a checkpoint payload (no size limit).
pub fn encode_unbounded<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, CONFIG_UNBOUNDED).map_err(|e| Error::Encode(e.to_string()))
}

/// Encodes a checkpoint payload (no size limit) into a writer, as it goes.
pub fn encode_unbounded_into<T: Serialize, W: std::io::Write>(value: &T, w: &mut W) -> Result<u64> {
    bincode::serde::encode_into_std_write(value, w, CONFIG_UNBOUNDED)
        .map(|n| n as u64)
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes a checkpoint payload (no size limit; check its digest first).
pub fn decode_unbounded<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    // Strings through borrowed slices, as for records: a length claimed past the end of
    // the input fails before anything is allocated (a plain decode allocated 2^50 bytes
    // for a crafted checkpoint and aborted: found by fuzzing).
    let seed = borrow_strings::W(std::marker::PhantomData::<T>);
    let (value, used) = bincode::serde::seed_decode_from_slice(seed, bytes, CONFIG_UNBOUNDED)
        .map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// The encoded size of a value, without allocating it.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize> {
    let mut w = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut w, CONFIG)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(w.bytes_written)
}

/// Decodes a record payload; trailing bytes are an error (a payload is exactly one value).
pub fn decode<T: DeserializeOwned>(lsn: Lsn, bytes: &[u8]) -> Result<T> {
    let seed = borrow_strings::W(std::marker::PhantomData::<T>);
    let (value, used) =
        bincode::serde::seed_decode_from_slice(seed, bytes, CONFIG).map_err(|e| Error::Decode {
            lsn,
            message: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(Error::Decode {
            lsn,
            message: format!("{} trailing bytes after the value", bytes.len() - used),
        });
    }
    Ok(value)
}

/// A serde adapter that asks for borrowed strings and bytes where a type wants owned ones.
///
/// bincode 2 decodes an owned `String` through a zero-filled `Vec<u8>`, which misses the
/// allocator's fast path; a borrowed `&str` from the payload, copied once by the `String`
/// visitor, costs one plain allocation. The bytes read are the same, so the format is
/// untouched. Every access type is wrapped so that nested values get the same treatment.
mod borrow_strings {
    use std::fmt;

    use serde::de::{
        DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
    };

    /// Wraps a deserializer, a visitor, a seed or an access.
    pub struct W<X>(pub X);

    macro_rules! forward {
        ($($m:ident),*) => {$(
            fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
                self.0.$m(W(v))
            }
        )*};
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for W<D> {
        type Error = D::Error;
        forward!(
            deserialize_any,
            deserialize_bool,
            deserialize_i8,
            deserialize_i16,
            deserialize_i32,
            deserialize_i64,
            deserialize_i128,
            deserialize_u8,
            deserialize_u16,
            deserialize_u32,
            deserialize_u64,
            deserialize_u128,
            deserialize_f32,
            deserialize_f64,
            deserialize_char,
            deserialize_str,
            deserialize_bytes,
            deserialize_option,
            deserialize_unit,
            deserialize_seq,
            deserialize_map,
            deserialize_identifier,
            deserialize_ignored_any
        );
        fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
            self.0.deserialize_str(W(v))
        }
        fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
            self.0.deserialize_bytes(W(v))
        }
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_unit_struct(name, W(v))
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_newtype_struct(name, W(v))
        }
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            len: usize,
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_tuple(len, W(v))
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_tuple_struct(name, len, W(v))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_struct(name, fields, W(v))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_enum(name, variants, W(v))
        }
        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }
    }

    macro_rules! visit {
        ($($m:ident($t:ty)),*) => {$(
            fn $m<E: serde::de::Error>(self, x: $t) -> Result<Self::Value, E> {
                self.0.$m(x)
            }
        )*};
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for W<V> {
        type Value = V::Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
        visit!(
            visit_bool(bool),
            visit_i8(i8),
            visit_i16(i16),
            visit_i32(i32),
            visit_i64(i64),
            visit_i128(i128),
            visit_u8(u8),
            visit_u16(u16),
            visit_u32(u32),
            visit_u64(u64),
            visit_u128(u128),
            visit_f32(f32),
            visit_f64(f64),
            visit_char(char),
            visit_str(&str),
            visit_borrowed_str(&'de str),
            visit_string(String),
            visit_bytes(&[u8]),
            visit_borrowed_bytes(&'de [u8]),
            visit_byte_buf(Vec<u8>)
        );
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_none()
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.visit_some(W(d))
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.visit_newtype_struct(W(d))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
            self.0.visit_seq(W(a))
        }
        fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(W(a))
        }
        fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
            self.0.visit_enum(W(a))
        }
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for W<S> {
        type Value = S::Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
            self.0.deserialize(W(d))
        }
    }

    impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for W<A> {
        type Error = A::Error;
        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, A::Error> {
            self.0.next_element_seed(W(seed))
        }
        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for W<A> {
        type Error = A::Error;
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            self.0.next_key_seed(W(seed))
        }
        fn next_value_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<T::Value, A::Error> {
            self.0.next_value_seed(W(seed))
        }
        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for W<A> {
        type Error = A::Error;
        type Variant = W<A::Variant>;
        fn variant_seed<T: DeserializeSeed<'de>>(
            self,
            seed: T,
        ) -> Result<(T::Value, Self::Variant), A::Error> {
            let (value, variant) = self.0.variant_seed(W(seed))?;
            Ok((value, W(variant)))
        }
    }

    impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for W<A> {
        type Error = A::Error;
        fn unit_variant(self) -> Result<(), A::Error> {
            self.0.unit_variant()
        }
        fn newtype_variant_seed<T: DeserializeSeed<'de>>(
            self,
            seed: T,
        ) -> Result<T::Value, A::Error> {
            self.0.newtype_variant_seed(W(seed))
        }
        fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
            self.0.tuple_variant(len, W(v))
        }
        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, A::Error> {
            self.0.struct_variant(fields, W(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<(String, String)>,
    }

    #[test]
    fn round_trip_and_rejects_garbage() {
        let s = Sample {
            id: 300,
            name: "x".into(),
            tags: vec![("k".into(), "v".into())],
        };
        let b = encode(&s).unwrap();
        assert_eq!(decode::<Sample>(Lsn(1), &b).unwrap(), s);
        let mut longer = b.clone();
        longer.push(0);
        assert!(decode::<Sample>(Lsn(1), &longer).is_err());
        assert!(decode::<Sample>(Lsn(1), &b[..b.len() - 1]).is_err());
        // A huge declared string length is refused by the limit, not allocated.
        assert!(decode::<Sample>(
            Lsn(1),
            &[1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        )
        .is_err());
    }
}
