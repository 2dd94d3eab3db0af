//! The JSON of sluice's DynamoDB items, packed: deflated (RFC 1951) against a preset dictionary of sluice's own
//! JSON, so that an item of a few kilobytes of JSON is billed as one write unit rather than two.
//!
//! Deflate refers back to what came before in the stream (up to 32 KB): a small document compresses little on its
//! own, since each key and value it has is new to it, but well after a dictionary that already has them. zlib calls
//! this a preset dictionary; here it is done with any deflate, as follows. Packing deflates the dictionary, flushes
//! (a sync flush ends its blocks on a byte boundary), deflates the JSON and keeps only the bytes after the flush,
//! marked with [`DICTIONARY_1`] (the compressor after the dictionary is made once and copied for each packing). Unpacking puts the dictionary back in front as an uncompressed (stored) block,
//! inflates, and drops the dictionary: the kept blocks' back-references are to the dictionary's bytes, not to how they
//! were encoded.
//!
//! Items packed without a dictionary, as earlier versions did, are read as they were: their first byte is a deflate
//! block header, never the marker (a block type of 3 is invalid).

use std::io::{self, Read};
use std::sync::OnceLock;

use flate2::read::DeflateDecoder;
use miniz_oxide::DataFormat;
use miniz_oxide::deflate::CompressionLevel;
use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output};

/// The first byte of JSON packed against [`DICTIONARY`]: in a deflate stream it would open a block of the reserved
/// type 3, so no stream without a dictionary starts with it.
pub const DICTIONARY_1: u8 = 0b0000_0110;

/// The preset dictionary: sluice's items as JSON, pipelines' states and runs (rolling, staged with a canary, canary),
/// as `make demo` stored them, with the demo's own values (names, accounts, region, ids, commits, times) replaced by
/// others, so that the demo's meter does not measure a dictionary made of its own items. Never change it: items
/// packed against it are read with it. A better one is a new file with a new marker.
const DICTIONARY: &[u8] = include_bytes!("packing-dictionary-1.json");

/// The compressor after the dictionary, flushed: each packing starts from a copy of it, instead of deflating the
/// dictionary again.
fn primed() -> &'static CompressorOxide {
    static PRIMED: OnceLock<CompressorOxide> = OnceLock::new();
    PRIMED.get_or_init(|| {
        let mut compressor = CompressorOxide::with_format_and_level(DataFormat::Raw, CompressionLevel::DefaultLevel);
        // A sync flush: the dictionary's blocks end here, on a byte boundary; what follows may refer back to it.
        let _ = compress_to_output(&mut compressor, DICTIONARY, TDEFLFlush::Sync, |_| true);
        compressor
    })
}

/// `json`, deflated against [`DICTIONARY`] and marked so.
pub fn pack(json: &str) -> io::Result<Vec<u8>> {
    let mut compressor = primed().clone();
    let mut packed = Vec::with_capacity(json.len() / 4 + 64);
    packed.push(DICTIONARY_1);
    let (status, _) = compress_to_output(&mut compressor, json.as_bytes(), TDEFLFlush::Finish, |blocks| {
        packed.extend_from_slice(blocks);
        true
    });
    match status {
        TDEFLStatus::Done => Ok(packed),
        other => Err(io::Error::other(format!("deflate stopped: {other:?}"))),
    }
}

/// What [`pack`] packed, or a deflate stream without a dictionary; at most `limit` bytes of text.
pub fn unpack(bytes: &[u8], limit: u64) -> io::Result<String> {
    let mut text = Vec::new();
    match bytes.split_first() {
        Some((&DICTIONARY_1, blocks)) => {
            let stored = stored_block_header(DICTIONARY.len())?;
            let stream = stored.as_slice().chain(DICTIONARY).chain(blocks);
            let limit = limit.saturating_add(DICTIONARY.len() as u64);
            DeflateDecoder::new(stream).take(limit).read_to_end(&mut text)?;
            text.drain(..DICTIONARY.len().min(text.len()));
        }
        _ => {
            DeflateDecoder::new(bytes).take(limit).read_to_end(&mut text)?;
        }
    }
    String::from_utf8(text).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// The header of a deflate block of `len` bytes stored as they are, not the stream's last: a byte of block type 0,
/// then the length and its complement, little-endian (RFC 1951, 3.2.4).
fn stored_block_header(len: usize) -> io::Result<[u8; 5]> {
    let len = u16::try_from(len).map_err(|_| io::Error::other("the dictionary is over 64 KB"))?;
    let [lo, hi] = len.to_le_bytes();
    let [nlo, nhi] = (!len).to_le_bytes();
    Ok([0, lo, hi, nlo, nhi])
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::DeflateEncoder;
    use std::io::Write as _;

    fn plain(json: &str) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(json.as_bytes()).expect("deflates");
        encoder.finish().expect("deflates")
    }

    #[test]
    fn json_packed_against_the_dictionary_unpacks_to_itself_and_is_smaller_than_without() {
        let json = r#"{"pipeline":"web","mode":"queued","next_seq":2,"executions":[{"id":"web-1","status":"running","stage":"deploy"}]}"#;
        let packed = pack(json).expect("packs");
        assert_eq!(packed[0], DICTIONARY_1);
        assert_eq!(unpack(&packed, 1 << 20).expect("unpacks"), json);
        assert!(packed.len() < plain(json).len(), "{} against {}", packed.len(), plain(json).len());
    }

    #[test]
    fn the_dictionary_is_the_one_stored_items_were_packed_against() {
        use sha2::Digest as _;
        let digest: String = sha2::Sha256::digest(DICTIONARY).iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(digest, "15632dbca8d66e1522365d5e5016398c08ef5c665628a5fedbb84bac93f686c4");
        // And an item packed against it, here by zlib's own preset dictionary (Python's zlib, zdict), reads
        let packed = [
            DICTIONARY_1,
            0xab,
            0x46,
            0xce,
            0x9a,
            0xe5,
            0xe0,
            0x7a,
            0x12,
            0x9a,
            0x99,
            0x0b,
            0x4b,
            0x53,
            0x4b,
            0x41,
            0x3b,
            0xa9,
            0x01,
        ];
        assert_eq!(unpack(&packed, 1 << 20).expect("unpacks"), r#"{"pipeline":"web","mode":"queued"}"#);
    }

    #[test]
    fn what_an_earlier_version_deflated_without_a_dictionary_is_read_as_it_was() {
        let json = r#"{"pipeline":"web","executions":[]}"#.repeat(20);
        let old = plain(&json);
        assert_ne!(old[0], DICTIONARY_1);
        assert_eq!(unpack(&old, 1 << 20).expect("inflates"), json);
    }

    #[test]
    fn text_of_any_size_and_characters_round_trips_and_the_limit_holds() {
        for json in [String::new(), "\u{0}\"\\é😀".repeat(3000), "x".repeat(200_000)] {
            assert_eq!(unpack(&pack(&json).expect("packs"), 1 << 20).expect("unpacks"), json);
        }
        let big = pack(&"y".repeat(5000)).expect("packs");
        assert_eq!(unpack(&big, 100).expect("unpacks").len(), 100, "no more than the limit");
    }

    #[test]
    fn bytes_that_are_not_a_packing_are_an_error_not_a_panic() {
        for bytes in [vec![DICTIONARY_1], vec![DICTIONARY_1, 0xff, 0x00], vec![0xff, 0x13], vec![]] {
            let _ = unpack(&bytes, 1 << 20);
        }
        assert!(unpack(&[DICTIONARY_1, 0xff, 0xff, 0xff], 1 << 20).is_err());
    }
}
