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

/// Decodes a record payload; trailing bytes are an error (a payload is exactly one value).
pub fn decode<T: DeserializeOwned>(lsn: Lsn, bytes: &[u8]) -> Result<T> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|e| Error::Decode {
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
