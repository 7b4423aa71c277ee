//! OpenPGP for apt: verifying upstream `InRelease` / `Release.gpg` against a distribution
//! keyring, and the site key that signs the mirror ferry writes. Pure Rust (rpgp).
//!
//! Verification accepts a document when at least one of its signatures is good, as gpgv does,
//! and is stricter than gpgv where apt's own policy is: signatures made with SHA-1 (or MD5,
//! RIPEMD-160) do not count, and neither do signatures by expired or revoked keys, or by
//! subkeys not bound for signing.
//!
//! The site key is a v4 Ed25519 key in the legacy EdDSA encoding (algorithm 22), which every
//! gpgv since 2.1 and sqv accept (Ubuntu 22.04's gpgv does not know RFC 9580's v6 keys).

use std::io::Cursor;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Tag, Timestamp};

/// OpenPGP errors; each says what was being read or checked.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The keyring holds no usable key.
    #[error("keyring {what}: {reason}")]
    Keyring {
        /// The keyring (a file name).
        what: String,
        /// Why.
        reason: String,
    },
    /// The signed document or signature could not be parsed.
    #[error("{what}: not an OpenPGP signed document: {reason}")]
    Parse {
        /// The document (a URL or file name).
        what: String,
        /// Why.
        reason: String,
    },
    /// No signature verified against the keyring.
    #[error("{what}: the signature does not verify against keyring {keyring}: {reason}")]
    BadSignature {
        /// The document.
        what: String,
        /// The keyring.
        keyring: String,
        /// Why each signature was refused.
        reason: String,
    },
    /// The site key could not be made, read or used.
    #[error("{0}")]
    Key(String),
}

/// OpenPGP packet tag of a trust packet (RFC 4880, 5.10).
const TRUST_PACKET_TAG: u8 = 12;

/// A binary keyring without its GnuPG trust packets (tag 12). A keyring file that gpg wrote
/// itself (pubring.gpg format, as distributions ship `ubuntu-archive-keyring.gpg`) holds them
/// after keys, user IDs and signatures: gpg's local cache of its own trust decisions, not
/// signed, meaningless to anyone else, so they are skipped and never trusted, as apt and gpgv
/// do. rpgp would otherwise stop collecting a user ID's signatures at the first one and find
/// the key without a self-signature. Input that is not a well-formed packet sequence is
/// returned as it is, for the parser to report.
fn without_trust_packets(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut dropped = false;
    let mut at = 0;
    while at < bytes.len() {
        let Some((tag, end)) = packet_extent(bytes, at) else {
            return std::borrow::Cow::Borrowed(bytes);
        };
        if tag == TRUST_PACKET_TAG {
            dropped = true;
        } else {
            kept.extend_from_slice(&bytes[at..end]);
        }
        at = end;
    }
    if dropped {
        std::borrow::Cow::Owned(kept)
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

/// The tag of the packet starting at `at` and the offset just past it; None when the bytes
/// there are not a whole packet (RFC 4880, 4.2: old and new header formats).
fn packet_extent(bytes: &[u8], at: usize) -> Option<(u8, usize)> {
    let be = |from: usize, n: usize| -> Option<usize> {
        let slice = bytes.get(from..from + n)?;
        Some(
            slice
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
        )
    };
    let first = *bytes.get(at)?;
    if first & 0x80 == 0 {
        return None;
    }
    if first & 0x40 == 0 {
        // Old format: tag in bits 5-2, length type in bits 1-0.
        let tag = (first >> 2) & 0x0f;
        let (len, header) = match first & 0x03 {
            0 => (be(at + 1, 1)?, 2),
            1 => (be(at + 1, 2)?, 3),
            2 => (be(at + 1, 4)?, 5),
            // Indeterminate length: the packet runs to the end.
            _ => (bytes.len() - at - 1, 1),
        };
        let end = (at + header).checked_add(len)?;
        return (end <= bytes.len()).then_some((tag, end));
    }
    // New format: tag in bits 5-0, then lengths; partial lengths chain body chunks.
    let tag = first & 0x3f;
    let mut pos = at + 1;
    loop {
        let o1 = usize::from(*bytes.get(pos)?);
        let (len, header, partial) = match o1 {
            0..=191 => (o1, 1, false),
            192..=223 => (((o1 - 192) << 8) + be(pos + 1, 1)? + 192, 2, false),
            255 => (be(pos + 1, 4)?, 5, false),
            _ => (1usize << (o1 & 0x1f), 1, true),
        };
        pos = (pos + header).checked_add(len)?;
        if pos > bytes.len() {
            return None;
        }
        if !partial {
            return Some((tag, pos));
        }
    }
}

/// A verified document: the signed text and who signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The text that the signature covers (line endings `\n`), and nothing else.
    pub text: String,
    /// Fingerprint (hex) of the key that made the good signature.
    pub signer: String,
}

/// A set of public keys trusted to sign a distribution's releases.
#[derive(Debug, Clone)]
pub struct Keyring {
    name: String,
    keys: Vec<SignedPublicKey>,
}

/// Checks one signature over some data with one key.
type Verifier<'a> = Box<dyn Fn(&Signature, &[u8]) -> pgp::errors::Result<()> + 'a>;

/// A key that may sign, with the times that bound its validity.
struct SigningCandidate<'a> {
    key: Verifier<'a>,
    key_id: pgp::types::KeyId,
    fingerprint: pgp::types::Fingerprint,
    created: u32,
    /// Seconds since the epoch after which it is expired.
    expires: Option<u64>,
    usable: Result<(), String>,
}

fn now_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Keyring {
    /// Reads a keyring: binary (`.gpg`, as distributions ship them) or ASCII-armored, one or
    /// more keys. `name` names it in messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Keyring, PgpError> {
        let bad = |reason: String| PgpError::Keyring {
            what: name.to_string(),
            reason,
        };
        let keys: Vec<SignedPublicKey> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_many(Cursor::new(bytes))
                .map_err(|e| bad(e.to_string()))?
                .0
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        } else {
            let bytes = without_trust_packets(bytes);
            SignedPublicKey::from_bytes_many(Cursor::new(&bytes[..]))
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        };
        if keys.is_empty() {
            return Err(bad(
                "it holds no public key (expected a binary .gpg keyring or an armored public key)"
                    .to_string(),
            ));
        }
        Ok(Keyring {
            name: name.to_string(),
            keys,
        })
    }

    /// Fingerprints (hex) of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex::encode_upper(k.primary_key.fingerprint().as_bytes()))
            .collect()
    }

    /// Verifies a cleartext-signed document (`InRelease`) and returns the text it signs.
    pub fn verify_cleartext(
        &self,
        document: &[u8],
        what: &str,
        now: SystemTime,
    ) -> Result<Verified, PgpError> {
        let text = std::str::from_utf8(document).map_err(|e| PgpError::Parse {
            what: what.to_string(),
            reason: format!("not UTF-8 text ({e})"),
        })?;
        let (message, _) =
            CleartextSignedMessage::from_string(text).map_err(|e| PgpError::Parse {
                what: what.to_string(),
                reason: e.to_string(),
            })?;
        let signed = message.signed_text();
        let signer = self.check(message.signatures(), signed.as_bytes(), what, now)?;
        Ok(Verified {
            text: signed.replace("\r\n", "\n"),
            signer,
        })
    }

    /// Verifies a detached signature (`Release.gpg`, armored or binary) over `data`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        what: &str,
        now: SystemTime,
    ) -> Result<Verified, PgpError> {
        let text = std::str::from_utf8(data).map_err(|e| PgpError::Parse {
            what: what.to_string(),
            reason: format!("not UTF-8 text ({e})"),
        })?;
        let parse = |e: pgp::errors::Error| PgpError::Parse {
            what: format!("{what}.gpg"),
            reason: e.to_string(),
        };
        let signatures: Vec<Signature> =
            DetachedSignature::from_reader_many(Cursor::new(signature))
                .map_err(parse)?
                .0
                .map(|s| s.map(|d| d.signature))
                .collect::<Result<_, _>>()
                .map_err(parse)?;
        let signer = self.check(&signatures, data, what, now)?;
        Ok(Verified {
            text: text.to_string(),
            signer,
        })
    }

    /// The keys that may have made signatures, primary and subkeys, with their validity.
    fn candidates(&self, now: u64) -> Vec<SigningCandidate<'_>> {
        let mut out = Vec::new();
        for key in &self.keys {
            let primary = &key.primary_key;
            let created = primary.created_at().as_secs();
            // The newest valid self-certification says what the primary key may do and until when.
            let mut newest: Option<&Signature> = None;
            for user in &key.details.users {
                for sig in &user.signatures {
                    if sig
                        .verify_certification(primary, Tag::UserId, &user.id)
                        .is_ok()
                        && newest.is_none_or(|n| n.created() < sig.created())
                    {
                        newest = Some(sig);
                    }
                }
            }
            for sig in &key.details.direct_signatures {
                if sig.verify_key(primary).is_ok()
                    && newest.is_none_or(|n| n.created() < sig.created())
                {
                    newest = Some(sig);
                }
            }
            let revoked = key
                .details
                .revocation_signatures
                .iter()
                .any(|s| s.verify_key(primary).is_ok());
            let expiry = |sig: Option<&Signature>, created: u32| {
                sig.and_then(|s| s.key_expiration_time())
                    .filter(|d| d.as_secs() > 0)
                    .map(|d| u64::from(created) + u64::from(d.as_secs()))
            };
            let primary_expires = expiry(newest, created);
            let primary_state: Result<(), String> = if revoked {
                Err("the key is revoked".into())
            } else if newest.is_none() {
                Err("the key has no valid self-signature".into())
            } else if primary_expires.is_some_and(|e| e <= now) {
                Err(format!(
                    "the key expired on {}",
                    date(primary_expires.unwrap_or(0))
                ))
            } else {
                Ok(())
            };
            let flags_allow_sign = newest.is_none_or(|s| {
                let flags = s.key_flags();
                flags.sign()
                    || !(flags.certify()
                        || flags.encrypt_comms()
                        || flags.encrypt_storage()
                        || flags.authentication())
            });
            out.push(SigningCandidate {
                key: Box::new(move |sig: &Signature, data: &[u8]| sig.verify(primary, data)),
                key_id: primary.legacy_key_id(),
                fingerprint: primary.fingerprint(),
                created,
                expires: primary_expires,
                usable: primary_state.clone().and_then(|()| {
                    if flags_allow_sign {
                        Ok(())
                    } else {
                        Err("the primary key is not marked for signing".into())
                    }
                }),
            });
            for sub in &key.public_subkeys {
                let sub_created = sub.key.created_at().as_secs();
                let binding = sub
                    .signatures
                    .iter()
                    .filter(|s| s.verify_subkey_binding(primary, &sub.key).is_ok())
                    .max_by_key(|s| s.created());
                let sub_revoked = sub.signatures.iter().any(|s| {
                    s.typ() == Some(SignatureType::SubkeyRevocation)
                        && s.verify_subkey_binding(primary, &sub.key).is_ok()
                });
                let sub_expires = expiry(binding, sub_created);
                let state = primary_state.clone().and_then(|()| match binding {
                    None => Err("the subkey has no valid binding signature".into()),
                    Some(_) if sub_revoked => Err("the subkey is revoked".into()),
                    Some(b) if !b.key_flags().sign() => {
                        Err("the subkey is not bound for signing".into())
                    }
                    Some(b) if b.embedded_signature().is_none() => {
                        Err("the signing subkey has no back-signature".into())
                    }
                    Some(_) if sub_expires.is_some_and(|e| e <= now) => Err(format!(
                        "the subkey expired on {}",
                        date(sub_expires.unwrap_or(0))
                    )),
                    Some(_) => Ok(()),
                });
                let subkey = &sub.key;
                out.push(SigningCandidate {
                    key: Box::new(move |sig: &Signature, data: &[u8]| sig.verify(subkey, data)),
                    key_id: subkey.legacy_key_id(),
                    fingerprint: subkey.fingerprint(),
                    created: sub_created,
                    expires: sub_expires,
                    usable: state,
                });
            }
        }
        out
    }

    /// Accepts the data when one signature is good; otherwise says why each was refused.
    fn check(
        &self,
        signatures: &[Signature],
        data: &[u8],
        what: &str,
        now: SystemTime,
    ) -> Result<String, PgpError> {
        let now = now_secs(now);
        let candidates = self.candidates(now);
        let mut reasons = Vec::new();
        if signatures.is_empty() {
            reasons.push("it carries no signature".to_string());
        }
        for sig in signatures {
            let issuers: Vec<String> = sig
                .issuer_fingerprint()
                .iter()
                .map(|f| hex::encode_upper(f.as_bytes()))
                .chain(
                    sig.issuer_key_id()
                        .iter()
                        .map(|k| hex::encode_upper(k.as_ref())),
                )
                .collect();
            let label = issuers.first().cloned().unwrap_or_else(|| "?".into());
            match sig.hash_alg() {
                Some(
                    HashAlgorithm::Sha256
                    | HashAlgorithm::Sha384
                    | HashAlgorithm::Sha512
                    | HashAlgorithm::Sha224
                    | HashAlgorithm::Sha3_256
                    | HashAlgorithm::Sha3_512,
                ) => {}
                Some(other) => {
                    reasons.push(format!(
                        "signature by {label} uses {other}, which is too weak and not accepted"
                    ));
                    continue;
                }
                None => {
                    reasons.push(format!("signature by {label} has an unknown version"));
                    continue;
                }
            }
            let matching: Vec<&SigningCandidate> = candidates
                .iter()
                .filter(|c| {
                    sig.issuer_key_id().iter().any(|k| **k == c.key_id)
                        || sig
                            .issuer_fingerprint()
                            .iter()
                            .any(|f| **f == c.fingerprint)
                })
                .collect();
            if matching.is_empty() {
                reasons.push(format!(
                    "signature by key {label}, which is not in the keyring"
                ));
                continue;
            }
            for c in matching {
                if let Err(why) = &c.usable {
                    reasons.push(format!("signature by key {label}: {why}"));
                    continue;
                }
                if let Err(e) = (c.key)(sig, data) {
                    reasons.push(format!("signature by key {label} is not valid for this content ({e}): the document was changed or corrupted"));
                    continue;
                }
                let made = sig.created().map(|t| u64::from(t.as_secs())).unwrap_or(0);
                if made < u64::from(c.created) {
                    reasons.push(format!("signature by key {label} is older than the key"));
                    continue;
                }
                if c.expires.is_some_and(|e| made > e) {
                    reasons.push(format!(
                        "signature by key {label} was made after the key expired"
                    ));
                    continue;
                }
                if let Some(d) = sig.signature_expiration_time().filter(|d| d.as_secs() > 0)
                    && made + u64::from(d.as_secs()) <= now
                {
                    reasons.push(format!("signature by key {label} has expired"));
                    continue;
                }
                return Ok(hex::encode_upper(c.fingerprint.as_bytes()));
            }
        }
        Err(PgpError::BadSignature {
            what: what.to_string(),
            keyring: self.name.clone(),
            reason: reasons.join("; "),
        })
    }
}

/// The text of a cleartext-signed document, without checking its signature (for documents
/// whose integrity is already proven, such as the upstream `InRelease` inside a verified bundle).
pub fn cleartext_body(document: &str) -> Option<String> {
    let (message, _) = CleartextSignedMessage::from_string(document).ok()?;
    Some(message.signed_text().replace("\r\n", "\n"))
}

/// `DD Mon YYYY` of a Unix time, for messages.
fn date(secs: u64) -> String {
    crate::source::apt::release::format_date(secs)
        .split(' ')
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The site key that signs ferry's apt mirror.
pub struct SiteKey {
    secret: SignedSecretKey,
    password: Password,
}

/// A newly generated site key, in the forms written to files.
pub struct GeneratedKey {
    /// The secret key, armored, protected with the password.
    pub secret_armored: String,
    /// The public key, armored.
    pub public_armored: String,
    /// The public key, binary: the keyring hosts name in `Signed-By`.
    pub public_binary: Vec<u8>,
    /// Fingerprint (hex).
    pub fingerprint: String,
}

impl SiteKey {
    /// Generates a v4 Ed25519 (legacy EdDSA) key that certifies and signs, protected by
    /// `password`.
    pub fn generate(user_id: &str, password: &str) -> Result<GeneratedKey, PgpError> {
        let key_err = |e: &dyn std::fmt::Display| {
            PgpError::Key(format!("cannot generate the apt signing key: {e}"))
        };
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.to_string())
            .passphrase(Some(password.to_string()))
            .preferred_hash_algorithms(
                [HashAlgorithm::Sha512, HashAlgorithm::Sha256]
                    .into_iter()
                    .collect(),
            );
        let params = params.build().map_err(|e| key_err(&e))?;
        let secret = params
            .generate(rand::thread_rng())
            .map_err(|e| key_err(&e))?;
        let public = secret.to_public_key();
        Ok(GeneratedKey {
            secret_armored: secret
                .to_armored_string(ArmorOptions::default())
                .map_err(|e| key_err(&e))?,
            public_armored: public
                .to_armored_string(ArmorOptions::default())
                .map_err(|e| key_err(&e))?,
            public_binary: public.to_bytes().map_err(|e| key_err(&e))?,
            fingerprint: hex::encode_upper(secret.primary_key.fingerprint().as_bytes()),
        })
    }

    /// Reads an armored secret key and checks that `password` unlocks it.
    pub fn from_armored(text: &str, password: &str, what: &str) -> Result<SiteKey, PgpError> {
        let (secret, _) = SignedSecretKey::from_string(text).map_err(|e| {
            PgpError::Key(format!(
                "{what} is not an armored OpenPGP secret key ({e}); make one with `ferry key generate --apt`"
            ))
        })?;
        let key = SiteKey {
            secret,
            password: Password::from(password),
        };
        // Signing once proves the password before any file is written.
        key.detached(b"probe", Timestamp::now()).map_err(|e| {
            PgpError::Key(format!(
                "cannot use {what}: {e}; check FERRY_KEY_PASSWORD (the password it was made with)"
            ))
        })?;
        Ok(key)
    }

    /// The public key, binary (a keyring for `Signed-By`).
    pub fn public_binary(&self) -> Result<Vec<u8>, PgpError> {
        self.secret
            .to_public_key()
            .to_bytes()
            .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// Fingerprint (hex).
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.secret.primary_key.fingerprint().as_bytes())
    }

    fn config(
        &self,
        typ: SignatureType,
        created: Timestamp,
    ) -> Result<SignatureConfig, pgp::errors::Error> {
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::v4(typ, key.algorithm(), HashAlgorithm::Sha512);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(created))?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
        ];
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
        Ok(config)
    }

    fn detached(&self, data: &[u8], created: Timestamp) -> Result<Signature, pgp::errors::Error> {
        self.config(SignatureType::Binary, created)?.sign(
            &self.secret.primary_key,
            &self.password,
            data,
        )
    }

    /// `InRelease`: `text` clearsigned (SHA-512).
    pub fn clearsign(&self, text: &str) -> Result<String, PgpError> {
        let created = self.signature_time();
        let config = self
            .config(SignatureType::Text, created)
            .map_err(|e| PgpError::Key(e.to_string()))?;
        let message =
            CleartextSignedMessage::new(text, config, &self.secret.primary_key, &self.password)
                .map_err(|e| PgpError::Key(format!("cannot sign: {e}")))?;
        message
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// `Release.gpg`: an armored detached signature over `data`.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, PgpError> {
        let signature = self
            .detached(data, self.signature_time())
            .map_err(|e| PgpError::Key(format!("cannot sign: {e}")))?;
        DetachedSignature::new(signature)
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// Signatures are dated an hour back (never before the key), so a host whose clock runs a
    /// little behind the importer's does not see a signature "from the future".
    /// Never before the newest self-signature either: sqv checks that the key was bound (by
    /// a self-signature) at the time of the signature.
    fn signature_time(&self) -> Timestamp {
        let bound = self
            .secret
            .details
            .users
            .iter()
            .flat_map(|u| u.signatures.iter())
            .chain(self.secret.details.direct_signatures.iter())
            .filter_map(|s| s.created())
            .map(|t| t.as_secs())
            .max()
            .unwrap_or(0)
            .max(self.secret.primary_key.created_at().as_secs());
        let now = Timestamp::now().as_secs();
        Timestamp::from_secs(now.saturating_sub(3600).max(bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_key_signs_what_its_keyring_verifies() {
        let generated = SiteKey::generate("ferry test <apt@ferry.invalid>", "pw").unwrap();
        assert!(generated.secret_armored.contains("PRIVATE KEY BLOCK"));
        let key = SiteKey::from_armored(&generated.secret_armored, "pw", "key").unwrap();
        assert!(SiteKey::from_armored(&generated.secret_armored, "wrong", "key").is_err());
        let keyring = Keyring::from_bytes(&generated.public_binary, "site.gpg").unwrap();
        let armored = Keyring::from_bytes(generated.public_armored.as_bytes(), "site.asc").unwrap();
        assert_eq!(keyring.fingerprints(), armored.fingerprints());
        assert_eq!(
            keyring.fingerprints(),
            std::slice::from_ref(&generated.fingerprint)
        );

        let text = "Origin: ferry\nSuite: stable\n-dash: line\nSHA256:\n abc 1 main/Packages\n";
        let signed = key.clearsign(text).unwrap();
        let verified = keyring
            .verify_cleartext(signed.as_bytes(), "InRelease", SystemTime::now())
            .unwrap();
        assert_eq!(verified.text.trim_end(), text.trim_end());
        assert_eq!(verified.signer, generated.fingerprint);

        let tampered = signed.replace("Suite: stable", "Suite: stabl3");
        let e = keyring
            .verify_cleartext(tampered.as_bytes(), "InRelease", SystemTime::now())
            .unwrap_err();
        assert!(e.to_string().contains("not valid for this content"), "{e}");

        let detached = key.sign_detached(text.as_bytes()).unwrap();
        keyring
            .verify_detached(
                text.as_bytes(),
                detached.as_bytes(),
                "Release",
                SystemTime::now(),
            )
            .unwrap();
        assert!(
            keyring
                .verify_detached(b"other", detached.as_bytes(), "Release", SystemTime::now())
                .is_err()
        );

        let other = SiteKey::generate("other <o@ferry.invalid>", "pw").unwrap();
        let other_ring = Keyring::from_bytes(&other.public_binary, "other.gpg").unwrap();
        let e = other_ring
            .verify_cleartext(signed.as_bytes(), "InRelease", SystemTime::now())
            .unwrap_err();
        assert!(e.to_string().contains("not in the keyring"), "{e}");
    }

    #[test]
    fn trust_packets_are_skipped_never_trusted() {
        let generated = SiteKey::generate("ferry test <apt@ferry.invalid>", "pw").unwrap();
        let key = SiteKey::from_armored(&generated.secret_armored, "pw", "key").unwrap();
        let signed = key.clearsign("Origin: ferry\n").unwrap();
        // After every packet a trust packet, as gpg writes them into a keyring file: old
        // format (as gpg does) and new format, with flags that would claim ultimate trust.
        let plain = &generated.public_binary;
        let mut with_trust = Vec::new();
        let mut at = 0;
        let mut new_format = false;
        while at < plain.len() {
            let (_, end) = packet_extent(plain, at).unwrap();
            with_trust.extend_from_slice(&plain[at..end]);
            if new_format {
                with_trust.extend_from_slice(&[0xc0 | TRUST_PACKET_TAG, 2, 0x06, 0x03]);
            } else {
                with_trust.extend_from_slice(&[0x80 | (TRUST_PACKET_TAG << 2), 2, 0x06, 0x03]);
            }
            new_format = !new_format;
            at = end;
        }
        assert!(with_trust.len() > plain.len());
        assert_eq!(
            without_trust_packets(&with_trust).as_ref(),
            plain.as_slice()
        );
        let keyring = Keyring::from_bytes(&with_trust, "trusted.gpg").unwrap();
        assert_eq!(
            keyring.fingerprints(),
            std::slice::from_ref(&generated.fingerprint)
        );
        keyring
            .verify_cleartext(signed.as_bytes(), "InRelease", SystemTime::now())
            .unwrap();
        // Trust packets alone are no keyring.
        let e = Keyring::from_bytes(&[0xb0, 2, 0x06, 0x03], "only-trust.gpg").unwrap_err();
        assert!(e.to_string().contains("only-trust.gpg"), "{e}");
        // A truncated keyring is left for the parser to refuse.
        let cut = &with_trust[..with_trust.len() - 1];
        assert_eq!(without_trust_packets(cut).as_ref(), cut);
    }

    #[test]
    fn bad_keyrings() {
        assert!(Keyring::from_bytes(b"", "empty.gpg").is_err());
        assert!(
            Keyring::from_bytes(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n", "x.asc").is_err()
        );
    }
}
