//! A record payload decoded as an envelope (`Envelope::decode`, bincode 2 with the 16 MiB
//! limit) for a frame kind chosen by the first byte (`% 22`: kinds 0..=21, so the unknown
//! kinds 0 and 21 are in too).
//!
//! Properties: no panic; a refusal is `Error::Decode`; an accepted envelope has the
//! frame's kind, re-encodes to no more bytes than it was decoded from (the writer's
//! encoding is the shortest), and that re-encoding decodes to the same envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdslog::event::Envelope;
use mdslog::log::{Lsn, RecordKind};
use mdslog::Error;

fuzz_target!(|data: &[u8]| {
    let Some((&k, payload)) = data.split_first() else {
        return;
    };
    let kind = RecordKind(u16::from(k) % 22);
    match Envelope::decode(Lsn(7), kind, payload) {
        Ok(env) => {
            assert_eq!(env.event.kind(), kind);
            let again = env.encode().expect("a decoded envelope encodes");
            assert!(
                again.len() <= payload.len(),
                "re-encoding is longer ({} > {})",
                again.len(),
                payload.len()
            );
            let back = Envelope::decode(Lsn(7), kind, &again).expect("re-encoding decodes");
            assert_eq!(back, env);
        }
        Err(Error::Decode { lsn, .. }) => assert_eq!(lsn, Lsn(7)),
        Err(other) => panic!("not a decode error: {other:?}"),
    }
});
