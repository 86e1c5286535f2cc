//! How the SQLite outbox keeps a notice's content: compressed against a reference text.
//!
//! The notices of one fan-out are one template rendered for many customers: between two
//! of them only the name, the times in each one's zone and a few words differ. Written
//! as they are, a million acknowledgements are most of a gigabyte, and writing those
//! bytes (the table, the write-ahead log, the checkpoint) was most of the fan-out's time.
//! So each notice's subject and body are compressed (LZ4 block format) with a
//! dictionary: the content of the first notice ever written in its *group*, the notices
//! that share a template (incident, kind, sequence, channel and locale). A notice of
//! 500 bytes becomes a few dozen.
//!
//! The reference of a group is written once, in the same transaction as the first
//! notices packed against it, and never changes; a notice's group follows from its own
//! columns, so a packed notice needs no pointer to its reference. The encoding is a
//! private matter of the SQLite backend: every read gives back the plain subject and
//! body, exactly as they were written.

use crate::NoticeRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most reference texts kept in memory; past it the cache starts again empty. A group's
/// reference is a notice's content, a few KiB at most, and a fan-out has a few groups
/// per locale and channel.
pub(crate) const REFERENCES_CACHED_MAX: usize = 4_096;

/// Notices packed by one thread before another is worth starting.
const PACK_CHUNK_MIN: usize = 2_048;

/// The reference texts known to be stored, by group. Only texts read from the database,
/// or written by a committed transaction, are ever put here.
#[derive(Debug, Default)]
pub(crate) struct References(Mutex<HashMap<String, Arc<[u8]>>>);

impl References {
    pub(crate) fn get(&self, group: &str) -> Option<Arc<[u8]>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(group).cloned()
    }

    pub(crate) fn remember(&self, group: String, text: Arc<[u8]>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REFERENCES_CACHED_MAX {
            map.clear();
        }
        map.insert(group, text);
    }
}

/// What one notice's subject and body are packed as (and a reference text is stored
/// as): the subject's length (u32, little-endian), the subject, then the body.
pub(crate) fn content_bytes(subject: &str, body: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + subject.len() + body.len());
    bytes.extend_from_slice(&(subject.len() as u32).to_le_bytes());
    bytes.extend_from_slice(subject.as_bytes());
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// The group a notice is packed in: the notices that share its template.
pub(crate) fn group(n: &NoticeRow) -> String {
    group_of(&n.about, &n.kind, n.seq, n.channel.as_str(), &n.locale)
}

/// [`group`], from the columns that name it.
pub(crate) fn group_of(about: &str, kind: &str, seq: i64, channel: &str, locale: &str) -> String {
    // Written piece by piece: a page names the group of every notice it lists.
    let mut group = String::with_capacity(about.len() + kind.len() + channel.len() + locale.len() + 24);
    for part in [about, "/", kind, "/"] {
        group.push_str(part);
    }
    let _ = std::fmt::Write::write_fmt(&mut group, format_args!("{seq}"));
    for part in ["/", channel, "/", locale] {
        group.push_str(part);
    }
    group
}

/// Whether a notice is worth packing: one suppressed before it was rendered has no
/// content, and is stored as it is.
pub(crate) fn worth_packing(n: &NoticeRow) -> bool {
    !n.subject.is_empty() || !n.body.is_empty()
}

/// `subject` and `body` compressed against `reference`.
pub(crate) fn pack(subject: &str, body: &str, reference: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size_with_dict(&content_bytes(subject, body), reference)
}

/// Packs every notice worth packing against its group's reference in `references`, on
/// every core for a large batch; `None` for the others (stored as they are).
pub(crate) fn pack_all(
    notices: &[&NoticeRow],
    references: &HashMap<String, Arc<[u8]>>,
) -> Vec<Option<Vec<u8>>> {
    let pack_one = |n: &NoticeRow| {
        let reference = references.get(&group(n)).filter(|_| worth_packing(n))?;
        Some(pack(&n.subject, &n.body, reference))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = notices.len().div_ceil(threads).max(PACK_CHUNK_MIN);
    if notices.len() <= chunk {
        return notices.iter().map(|n| pack_one(n)).collect();
    }
    crate::background::without_holding_the_runtime(|| pack_in_parallel(notices, chunk, &pack_one))
}

/// `notices` packed by `pack_one`, `chunk` at a time, each on a thread of its own that
/// yields to pages being served.
fn pack_in_parallel(
    notices: &[&NoticeRow],
    chunk: usize,
    pack_one: &(dyn Fn(&NoticeRow) -> Option<Vec<u8>> + Sync),
) -> Vec<Option<Vec<u8>>> {
    std::thread::scope(|s| {
        let parts: Vec<_> = notices
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    crate::background::lower_this_thread();
                    part.iter().map(|n| pack_one(n)).collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// The subject and body `packed` holds, given the reference it was packed against.
pub(crate) fn unpack(packed: &[u8], reference: &[u8]) -> Result<(String, String), String> {
    let bytes = lz4_flex::block::decompress_size_prepended_with_dict(packed, reference)
        .map_err(|e| format!("packed content does not decompress: {e}"))?;
    split_content(bytes)
}

/// The inverse of [`content_bytes`].
fn split_content(mut bytes: Vec<u8>) -> Result<(String, String), String> {
    let Some(len) = bytes.get(..4) else {
        return Err(format!("packed content of {} bytes has no subject length", bytes.len()));
    };
    let subject_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if bytes.len() < 4 + subject_len {
        return Err(format!("subject of {subject_len} bytes in packed content of {} bytes", bytes.len()));
    }
    let body = bytes.split_off(4 + subject_len);
    let subject = bytes.split_off(4);
    let text =
        |b: Vec<u8>, what: &str| String::from_utf8(b).map_err(|_| format!("packed {what} is not UTF-8"));
    Ok((text(subject, "subject")?, text(body, "body")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_notice_like_its_reference_packs_small_and_comes_back_whole() {
        let reference = content_bytes(
            "We know your service is down (INC-000001)",
            &"Hello Ana García,\n\nThere is an outage in your area. We expect it back by 4:00 PM CET.\n"
                .repeat(5),
        );
        let body =
            "Hello Bruno Martin,\n\nThere is an outage in your area. We expect it back by 5:00 PM WET.\n"
                .repeat(5);
        let packed = pack("We know your service is down (INC-000001)", &body, &reference);
        assert!(packed.len() * 5 < body.len(), "{} bytes packed from {}", packed.len(), body.len());
        assert_eq!(
            unpack(&packed, &reference).unwrap(),
            ("We know your service is down (INC-000001)".to_string(), body)
        );
    }

    #[test]
    fn damaged_content_is_an_error_not_a_panic() {
        let reference = content_bytes("s", "the body of the reference");
        let packed = pack("s", "the body of the reference, nearly", &reference);
        for cut in 0..packed.len() {
            let _ = unpack(&packed[..cut], &reference);
        }
        assert!(unpack(&packed[..packed.len() - 1], &reference).is_err());
        assert!(unpack(&[], &reference).is_err());
        assert!(split_content(vec![9, 0, 0, 0, b'a']).unwrap_err().contains("subject of 9 bytes"));
        assert!(split_content(vec![1, 0, 0, 0, 0xff]).unwrap_err().contains("subject is not UTF-8"));
    }

    proptest! {
        #[test]
        fn unpack_inverts_pack(subject in ".{0,80}", body in ".{0,600}", reference in ".{0,600}") {
            let reference = content_bytes("", &reference);
            prop_assert_eq!(unpack(&pack(&subject, &body, &reference), &reference).unwrap(), (subject, body));
        }
    }
}
