//! Signed unsubscribe links: one click opts a customer out without logging in.
//!
//! A token is `base64url(sealed)`, without padding: a small binary payload (customer, topic,
//! channel, expiry, token id) sealed with AES-SIV (RFC 5297, deterministic authenticated
//! encryption) under a key derived from the secret [`OptOutKey`] for the link's
//! [`Purpose`]. Whoever holds the link sees an opaque id: not who it is for, not when it
//! expires. The seal's 16-byte synthetic IV authenticates it, so the link proves the
//! provider issued it; it grants nothing but what it names, so it may travel in an email.
//! The same claim always seals to the same token, so a re-rendered notice carries the same
//! link.
//!
//! Links of the first format (`base64url(JSON) "." base64url(HMAC)`, readable by anyone)
//! are still accepted until they expire, so links already in inboxes keep working.
//!
//! What the caller does: put a fresh `token_id` in every claim ([`OptOutClaim::new`] does)
//! and, after [`OptOutKey::verify`], record the id in the store so a link works once.
//!
//! Errors shown to the person who clicked say only "this link is not valid" or "this link
//! has expired": never the customer, the payload or what exactly was wrong, so a forged or
//! mistyped link teaches an attacker nothing.

use aes_siv::siv::Aes128Siv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted, in bytes, checked before any decoding. A claim with a 128-byte
/// customer id makes a token of about 400 bytes.
pub const TOKEN_BYTES_MAX: usize = 1024;

/// Key length bounds, in bytes: at least the 32 bytes of the hash's output; more than the
/// 64-byte block would only be hashed down by HMAC.
pub const KEY_BYTES_MIN: usize = 32;
pub const KEY_BYTES_MAX: usize = 64;

/// Bytes of a generated token id: 128 random bits never repeat in practice.
const TOKEN_ID_BYTES: usize = 16;

/// Prefixed to what is signed, so a tag made for anything else with the same key (another
/// kind of link, a later format) is never a valid opt-out tag.
const CONTEXT: &[u8] = b"amends/opt-out/v1\0";

/// The context of survey links: a survey link is never a valid opt-out link, nor the
/// reverse, even under the same key.
const SURVEY_CONTEXT: &[u8] = b"amends/survey/v1\0";

/// The context of a customer's page links.
const PAGE_CONTEXT: &[u8] = b"amends/customer-page/v1\0";

/// What a signed link is for; each purpose signs under its own context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    OptOut,
    /// A survey answer link: `topic` holds the survey id.
    Survey,
    /// A customer's own page (`crate::page`): the claim names only the customer.
    Page,
}

impl Purpose {
    fn context(self) -> &'static [u8] {
        match self {
            Purpose::OptOut => CONTEXT,
            Purpose::Survey => SURVEY_CONTEXT,
            Purpose::Page => PAGE_CONTEXT,
        }
    }
}

/// The first payload format's version (readable JSON with an HMAC tag), still accepted.
const PAYLOAD_VERSION: u8 = 1;

/// The sealed payload format's version, the first byte of what is sealed.
const SEALED_VERSION: u8 = 2;

/// Prefixed to a purpose's context to derive the key that seals its links, so that the
/// sealing key is never the HMAC key itself and each purpose seals under its own key.
const SEAL_KEY_CONTEXT: &[u8] = b"amends/link-seal/v2\0";

/// Written for an absent topic or channel in the sealed payload (a string is at most 255
/// bytes, so its length byte is never this and a present empty string stays distinct).
const ABSENT: u8 = 0xFF;

/// What an unsubscribe link asks for: opt `customer_id` out of `topic` on `channel` (each
/// `None` meaning all; the names of `amends_core::preferences::Topic` and `Channel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutClaim {
    pub customer_id: String,
    pub topic: Option<String>,
    pub channel: Option<String>,
    /// Kept to the second in the token: a claim reads back with the sub-second part cut.
    pub expires_at: Timestamp,
    /// Unique per token, for the single-use check the caller does in the store.
    pub token_id: String,
}

impl OptOutClaim {
    /// A claim with a fresh random token id.
    pub fn new(
        customer_id: &str,
        topic: Option<&str>,
        channel: Option<&str>,
        expires_at: Timestamp,
    ) -> OptOutClaim {
        let mut id = [0u8; TOKEN_ID_BYTES];
        rand::rng().fill_bytes(&mut id);
        OptOutClaim {
            customer_id: customer_id.to_string(),
            topic: topic.map(str::to_string),
            channel: channel.map(str::to_string),
            expires_at,
            token_id: hex::encode(id),
        }
    }
}

/// Why a link was refused; the `Display` is safe to show to anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OptOutError {
    /// Forged, altered, truncated, too long, or signed with another key.
    #[error("this link is not valid")]
    Invalid,
    #[error("this link has expired")]
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptOutKeyError {
    #[error("the opt-out key is not hexadecimal")]
    NotHex,
    #[error("the opt-out key is {bytes} bytes; it must be {KEY_BYTES_MIN} to {KEY_BYTES_MAX} bytes")]
    Length { bytes: usize },
}

/// A claim that cannot be made into a link: a field longer than [`FIELD_BYTES_MAX`], or a
/// token longer than [`TOKEN_BYTES_MAX`], so that the link would be refused when clicked;
/// refused when signing instead. `bytes` is the field's length, or the token's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a link for this claim would not work: {bytes} bytes, where a field holds at most {FIELD_BYTES_MAX} and a link {TOKEN_BYTES_MAX}"
)]
pub struct OptOutSignError {
    pub bytes: usize,
}

/// Longest customer id, topic, channel or token id a link holds, in bytes (one length
/// byte each in the sealed payload, [`ABSENT`] excepted). Customer ids are at most 128
/// bytes, so a real link is well under [`TOKEN_BYTES_MAX`].
pub const FIELD_BYTES_MAX: usize = 254;

/// The secret that signs and checks links. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct OptOutKey {
    bytes: Vec<u8>,
}

impl fmt::Debug for OptOutKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OptOutKey(redacted)")
    }
}

/// The signed payload, with short names because it travels in every link.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u8,
    c: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    e: i64,
    i: String,
}

impl OptOutKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OptOutKeyError> {
        if !(KEY_BYTES_MIN..=KEY_BYTES_MAX).contains(&bytes.len()) {
            return Err(OptOutKeyError::Length { bytes: bytes.len() });
        }
        Ok(OptOutKey { bytes: bytes.to_vec() })
    }

    /// From hexadecimal, as kept in settings; the error never quotes the text.
    pub fn from_hex(s: &str) -> Result<Self, OptOutKeyError> {
        Self::from_bytes(&hex::decode(s.trim()).map_err(|_| OptOutKeyError::NotHex)?)
    }

    /// A new random key of [`KEY_BYTES_MIN`] bytes from the thread's cryptographically
    /// secure generator (seeded by the operating system).
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; KEY_BYTES_MIN];
        rand::rng().fill_bytes(&mut bytes);
        OptOutKey { bytes }
    }

    /// The key's bytes, for another keyed hash under the same kind of secret.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key in hexadecimal, to store a generated key in settings.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// The token for `claim`: URL-safe (`A-Z a-z 0-9 - _ .`), at most [`TOKEN_BYTES_MAX`].
    pub fn sign(&self, claim: &OptOutClaim) -> Result<String, OptOutSignError> {
        self.sign_for(Purpose::OptOut, claim)
    }

    /// The claim of an opt-out token this key signed, if it has not expired at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<OptOutClaim, OptOutError> {
        self.verify_for(Purpose::OptOut, token, now)
    }

    /// [`OptOutKey::sign`] for `purpose`: the claim sealed under the purpose's key.
    pub fn sign_for(&self, purpose: Purpose, claim: &OptOutClaim) -> Result<String, OptOutSignError> {
        let mut plain = Vec::with_capacity(64);
        plain.push(SEALED_VERSION);
        plain.extend_from_slice(&claim.expires_at.as_second().to_be_bytes());
        for field in
            [Some(&claim.customer_id), claim.topic.as_ref(), claim.channel.as_ref(), Some(&claim.token_id)]
        {
            match field {
                None => plain.push(ABSENT),
                Some(text) => {
                    let len = u8::try_from(text.len())
                        .ok()
                        .filter(|&l| usize::from(l) <= FIELD_BYTES_MAX)
                        .ok_or(OptOutSignError { bytes: text.len() })?;
                    plain.push(len);
                    plain.extend_from_slice(text.as_bytes());
                }
            }
        }
        // Sealing fails only for inputs of gigabytes, far beyond the bounds checked above.
        let sealed =
            self.sealer(purpose).encrypt([purpose.context()], &plain).expect("a link's payload is small");
        let token = URL_SAFE_NO_PAD.encode(sealed);
        // Fields within their bound can still add up past the token's: refused here, not
        // when the customer clicks.
        if token.len() > TOKEN_BYTES_MAX {
            return Err(OptOutSignError { bytes: token.len() });
        }
        Ok(token)
    }

    /// The claim of a token this key signed, if it has not expired at `now`.
    ///
    /// The length is checked first, and the seal (or, for a first-format token, the tag)
    /// before the payload is decoded, so nothing unauthenticated is parsed.
    pub fn verify_for(
        &self,
        purpose: Purpose,
        token: &str,
        now: Timestamp,
    ) -> Result<OptOutClaim, OptOutError> {
        let claim = self.open_for(purpose, token)?;
        if now >= claim.expires_at {
            return Err(OptOutError::Expired);
        }
        Ok(claim)
    }

    /// The claim of a token this key signed for `purpose`, expired or not: for what an
    /// expired link may still do (ask for a fresh one), never to act on it.
    pub fn open_for(&self, purpose: Purpose, token: &str) -> Result<OptOutClaim, OptOutError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(OptOutError::Invalid);
        }
        match token.split_once('.') {
            Some((body, tag)) => self.open_readable(purpose, body, tag),
            None => self.open_sealed(purpose, token),
        }
        .ok_or(OptOutError::Invalid)
    }

    /// The claim of a sealed token: authenticated and decrypted in one step, so nothing
    /// unauthenticated is parsed.
    fn open_sealed(&self, purpose: Purpose, token: &str) -> Option<OptOutClaim> {
        let sealed = URL_SAFE_NO_PAD.decode(token).ok()?;
        let plain = self.sealer(purpose).decrypt([purpose.context()], &sealed).ok()?;
        decode_sealed(&plain)
    }

    /// The claim of a first-format token: the tag is checked before the payload is
    /// decoded, and compared in the same time wherever it differs.
    fn open_readable(&self, purpose: Purpose, body: &str, tag: &str) -> Option<OptOutClaim> {
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(purpose, body).verify_slice(&tag).ok()?;
        decode_payload(body)
    }

    /// The AES-SIV cipher of `purpose`'s links: its 32-byte key (two AES-128 keys) is the
    /// HMAC of the purpose's context under the secret.
    fn sealer(&self, purpose: Purpose) -> Aes128Siv {
        let mut derive = HmacSha256::new_from_slice(&self.bytes).expect("HMAC accepts any key length");
        derive.update(SEAL_KEY_CONTEXT);
        derive.update(purpose.context());
        aes_siv::KeyInit::new(&derive.finalize().into_bytes())
    }

    fn mac(&self, purpose: Purpose, body: &str) -> HmacSha256 {
        // HMAC takes a key of any length; the length is checked when the key is built.
        let mut mac = HmacSha256::new_from_slice(&self.bytes).expect("HMAC accepts any key length");
        mac.update(purpose.context());
        mac.update(body.as_bytes());
        mac
    }
}

/// How long a page link works after the notice that carried it: a month, long enough for
/// the outage, its credit and the bill it lands on.
pub const PAGE_LINK_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 31);

/// Signs page links for one base URL.
#[derive(Clone)]
pub struct PageLinks {
    key: OptOutKey,
    base: String,
}

impl PageLinks {
    pub fn new(key: OptOutKey, public_url: &str) -> Self {
        PageLinks { key, base: format!("{}/my?token=", public_url.trim_end_matches('/')) }
    }

    /// The link to `customer`'s page carried by something sent at `at`: it works until
    /// `at` + [`PAGE_LINK_LIFETIME`], and is the same link for the same customer and moment.
    pub fn link(&self, customer: &str, at: Timestamp) -> String {
        let expires_at = at.checked_add(PAGE_LINK_LIFETIME).unwrap_or(Timestamp::MAX);
        let mut id = Sha256::new();
        id.update(customer.as_bytes());
        id.update(expires_at.as_second().to_be_bytes());
        let claim = OptOutClaim {
            customer_id: customer.to_string(),
            topic: None,
            channel: None,
            expires_at,
            token_id: hex::encode(&id.finalize()[..16]),
        };
        // A customer id is at most 128 bytes, so the token stays under its bound.
        let token = self.key.sign_for(Purpose::Page, &claim).unwrap_or_default();
        format!("{}{token}", self.base)
    }
}

/// The claim in an authenticated payload; `None` only for a payload this code did not
/// write (another version).
fn decode_payload(body: &str) -> Option<OptOutClaim> {
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    let p: Payload = serde_json::from_slice(&json).ok()?;
    if p.v != PAYLOAD_VERSION {
        return None;
    }
    Some(OptOutClaim {
        customer_id: p.c,
        topic: p.t,
        channel: p.h,
        expires_at: Timestamp::from_second(p.e).ok()?,
        token_id: p.i,
    })
}

/// The claim in a sealed payload; `None` for a payload this code did not write.
fn decode_sealed(plain: &[u8]) -> Option<OptOutClaim> {
    let (&version, rest) = plain.split_first()?;
    if version != SEALED_VERSION {
        return None;
    }
    let (expiry, mut rest) = rest.split_first_chunk::<8>()?;
    let mut next = || -> Option<Option<String>> {
        let (&len, tail) = rest.split_first()?;
        if len == ABSENT {
            rest = tail;
            return Some(None);
        }
        let (text, tail) = tail.split_at_checked(usize::from(len))?;
        rest = tail;
        Some(Some(String::from_utf8(text.to_vec()).ok()?))
    };
    let (customer_id, topic, channel, token_id) = (next()??, next()?, next()?, next()??);
    if !rest.is_empty() {
        return None;
    }
    Some(OptOutClaim {
        customer_id,
        topic,
        channel,
        expires_at: Timestamp::from_second(i64::from_be_bytes(*expiry)).ok()?,
        token_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: &str = "CUST-0042-secret";

    fn key() -> OptOutKey {
        OptOutKey::from_hex(&"2a".repeat(32)).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn claim() -> OptOutClaim {
        OptOutClaim {
            customer_id: CUSTOMER.into(),
            topic: Some("update".into()),
            channel: Some("sms".into()),
            expires_at: ts("2026-12-01T00:00:00Z"),
            token_id: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn now() -> Timestamp {
        ts("2026-11-23T21:00:00Z")
    }

    /// Neither the message nor the debug form of `e` says who the link was for.
    fn assert_reveals_nothing(e: OptOutError) {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(CUSTOMER) && !text.contains("0042"), "{text}");
        }
        assert!(["this link is not valid", "this link has expired"].contains(&e.to_string().as_str()));
    }

    #[test]
    fn round_trip() {
        let token = key().sign(&claim()).unwrap();
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)), "{token}");
        assert_eq!(key().verify(&token, now()), Ok(claim()));
        let everything = OptOutClaim { topic: None, channel: None, ..claim() };
        assert_eq!(key().verify(&key().sign(&everything).unwrap(), now()), Ok(everything));
    }

    #[test]
    fn new_claims_get_distinct_token_ids() {
        let a = OptOutClaim::new(CUSTOMER, None, Some("email"), now());
        let b = OptOutClaim::new(CUSTOMER, None, Some("email"), now());
        assert_eq!(a.token_id.len(), 32);
        assert_ne!(a.token_id, b.token_id);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let token = key().sign(&claim()).unwrap();
        let mut tried = 0;
        for i in 0..token.len() {
            for bit in 0..8 {
                let mut bytes = token.clone().into_bytes();
                bytes[i] ^= 1 << bit;
                let Ok(altered) = String::from_utf8(bytes) else { continue };
                let e = key().verify(&altered, now()).unwrap_err();
                assert_eq!(e, OptOutError::Invalid, "byte {i} bit {bit}");
                tried += 1;
            }
        }
        assert!(tried > token.len() * 6, "{tried}");
    }

    /// A token of the first format (readable JSON and an HMAC tag), as links already in
    /// inboxes carry.
    fn readable(purpose: Purpose, claim: &OptOutClaim) -> String {
        let payload = Payload {
            v: PAYLOAD_VERSION,
            c: claim.customer_id.clone(),
            t: claim.topic.clone(),
            h: claim.channel.clone(),
            e: claim.expires_at.as_second(),
            i: claim.token_id.clone(),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        let tag = URL_SAFE_NO_PAD.encode(key().mac(purpose, &body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    #[test]
    fn the_token_is_opaque_and_the_same_for_the_same_claim() {
        let token = key().sign(&claim()).unwrap();
        assert!(!token.contains('.'), "{token}");
        let decoded = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for secret in [CUSTOMER.as_bytes(), b"update", b"sms", b"0123456789abcdef"] {
            assert!(!decoded.windows(secret.len()).any(|w| w == secret), "the token shows {secret:?}");
        }
        assert_eq!(
            token,
            key().sign(&claim()).unwrap(),
            "deterministic: a re-rendered notice keeps its link"
        );
        assert!(token.len() < 140, "{} bytes", token.len());
    }

    #[test]
    fn first_format_links_still_work_for_their_purpose_until_they_expire() {
        let token = readable(Purpose::OptOut, &claim());
        assert_eq!(key().verify(&token, now()), Ok(claim()));
        assert_eq!(key().verify_for(Purpose::Page, &token, now()), Err(OptOutError::Invalid));
        assert_eq!(key().verify(&token, ts("2026-12-01T00:00:00Z")), Err(OptOutError::Expired));
        let (_, tag) = token.split_once('.').unwrap();
        let other = readable(Purpose::OptOut, &OptOutClaim { customer_id: "CUST-0043".into(), ..claim() });
        let (other_body, _) = other.split_once('.').unwrap();
        assert_eq!(key().verify(&format!("{other_body}.{tag}"), now()), Err(OptOutError::Invalid));
    }

    #[test]
    fn each_purpose_seals_under_its_own_key() {
        let purposes = [Purpose::OptOut, Purpose::Survey, Purpose::Page];
        for signed in purposes {
            let token = key().sign_for(signed, &claim()).unwrap();
            for checked in purposes {
                let got = key().verify_for(checked, &token, now());
                assert_eq!(got.is_ok(), signed == checked, "{signed:?} checked as {checked:?}");
            }
        }
    }

    #[test]
    fn another_key_is_refused() {
        let token = OptOutKey::generate().sign(&claim()).unwrap();
        let e = key().verify(&token, now()).unwrap_err();
        assert_eq!(e, OptOutError::Invalid);
        assert_reveals_nothing(e);
    }

    #[test]
    fn expired_is_refused() {
        let token = key().sign(&claim()).unwrap();
        assert!(key().verify(&token, ts("2026-11-30T23:59:59Z")).is_ok());
        for at in ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"] {
            let e = key().verify(&token, ts(at)).unwrap_err();
            assert_eq!(e, OptOutError::Expired, "{at}");
            assert_eq!(e.to_string(), "this link has expired");
            assert_reveals_nothing(e);
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_saying_why() {
        let token = key().sign(&claim()).unwrap();
        let first = readable(Purpose::OptOut, &claim());
        let (body, tag) = first.split_once('.').unwrap();
        for bad in [
            "",
            ".",
            "no-dot-at-all",
            &token[..token.len() - 1],
            &format!("{token}A"),
            &format!("{token}="),
            &token[..22],
            body,
            &format!("{body}."),
            &format!(".{tag}"),
            &format!("{body}.{tag}="),
            &format!("{body}.{}", &tag[..tag.len() - 2]),
            &format!("{body}.{tag}.{tag}"),
            &format!("{body}=.{tag}"),
            &first.replace('.', "%2E"),
            "é.é",
            "é",
        ] {
            let e = key().verify(bad, now()).unwrap_err();
            assert_eq!(e, OptOutError::Invalid, "{bad:?}");
            assert_eq!(e.to_string(), "this link is not valid");
            assert_reveals_nothing(e);
        }
    }

    #[test]
    fn oversized_input_is_refused() {
        let huge = format!("{}.{}", "A".repeat(TOKEN_BYTES_MAX), "B".repeat(43));
        assert_eq!(key().verify(&huge, now()), Err(OptOutError::Invalid));
        assert_eq!(key().verify(&"A".repeat(TOKEN_BYTES_MAX + 1), now()), Err(OptOutError::Invalid));
        let long = OptOutClaim { customer_id: "x".repeat(TOKEN_BYTES_MAX), ..claim() };
        let e = key().sign(&long).unwrap_err();
        assert_eq!(e.bytes, TOKEN_BYTES_MAX);
        let three_wide = OptOutClaim {
            customer_id: "x".repeat(250),
            topic: Some("y".repeat(250)),
            channel: Some("z".repeat(250)),
            ..claim()
        };
        let e = key().sign(&three_wide).unwrap_err();
        assert!(e.bytes > TOKEN_BYTES_MAX, "fields that fit, a token that would not: {e}");
        let widest_field = OptOutClaim { customer_id: "x".repeat(FIELD_BYTES_MAX), ..claim() };
        let token = key().sign(&widest_field).unwrap();
        assert!(token.len() <= TOKEN_BYTES_MAX, "{}", token.len());
        assert_eq!(key().verify(&token, now()), Ok(widest_field));
        assert!(!e.to_string().contains("xxx"), "{e}");
        // The longest ordinary claim fits with room to spare.
        let widest = OptOutClaim {
            customer_id: "\"".repeat(128),
            topic: Some("acknowledgement".into()),
            channel: Some("webhook".into()),
            ..claim()
        };
        let token = key().sign(&widest).unwrap();
        assert!(token.len() < TOKEN_BYTES_MAX * 3 / 4, "{}", token.len());
        assert_eq!(key().verify(&token, now()), Ok(widest));
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert_eq!(OptOutKey::from_hex("zz").unwrap_err(), OptOutKeyError::NotHex);
        assert_eq!(OptOutKey::from_hex(&"ab".repeat(31)).unwrap_err(), OptOutKeyError::Length { bytes: 31 });
        assert_eq!(OptOutKey::from_bytes(&[0; 65]).unwrap_err(), OptOutKeyError::Length { bytes: 65 });
        assert!(OptOutKey::from_bytes(&[7; 64]).is_ok());
        let k = OptOutKey::generate();
        assert_eq!(format!("{k:?}"), "OptOutKey(redacted)");
        let again = OptOutKey::from_hex(&k.to_hex()).unwrap();
        let token = k.sign(&claim()).unwrap();
        assert_eq!(again.verify(&token, now()), Ok(claim()));
    }

    #[test]
    fn expiry_is_kept_to_the_second() {
        let precise = OptOutClaim { expires_at: ts("2026-12-01T00:00:00.75Z"), ..claim() };
        let read = key().verify(&key().sign(&precise).unwrap(), now()).unwrap();
        assert_eq!(read.expires_at, ts("2026-12-01T00:00:00Z"));
    }
}
