//! cosign-compatible signing keys and blob signatures.
//!
//! The files are the ones `cosign generate-key-pair`, `cosign sign-blob --key` and
//! `cosign verify-blob --key` use, so a bundle signed by ferry can be checked with cosign or
//! plain `openssl`, and a key made by cosign can sign with ferry:
//!
//! - `cosign.key`: PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign wrote
//!   `ENCRYPTED COSIGN PRIVATE KEY`; both are read). The body is go-securesystemslib's
//!   `encrypted` JSON: scrypt turns the password into a key for a NaCl secretbox around the
//!   PKCS#8 DER of an ECDSA P-256 private key.
//! - `cosign.pub`: PEM `PUBLIC KEY` (SubjectPublicKeyInfo DER).
//! - a signature: base64 of the DER ECDSA P-256 / SHA-256 signature of the signed bytes.
//!
//! The cryptography and the key-file encryption come from the `sigstore` crate; this module
//! narrows it to the one key type ferry uses and turns its errors into messages that say what
//! to do. One difference from cosign remains: sigstore encrypts new keys with scrypt
//! N = 32768 where cosign now uses 65536. cosign (go-securesystemslib) reads both, and so do we.

use std::ffi::OsString;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use sigstore::crypto::signing_key::ecdsa::ec::{EcdsaKeys, EcdsaSigner};
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::{
    COSIGN_PRIVATE_KEY_PEM_LABEL, KeyPair as _, PUBLIC_KEY_PEM_LABEL,
    SIGSTORE_PRIVATE_KEY_PEM_LABEL, Signer as _,
};
use sigstore::crypto::{CosignVerificationKey, Signature};
use sigstore::errors::SigstoreError;

/// File name of the encrypted private key, as cosign names it.
pub const PRIVATE_KEY_FILE: &str = "cosign.key";
/// File name of the public key, as cosign names it.
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";

/// Environment variable ferry reads the key password from first.
const PASSWORD_ENV: &str = "FERRY_KEY_PASSWORD";
/// cosign's own password variable, read second so one setting serves both tools.
const COSIGN_PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Why a key or signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The password does not open the private key.
    #[error("wrong password for {PRIVATE_KEY_FILE} (set FERRY_KEY_PASSWORD or COSIGN_PASSWORD)")]
    WrongPassword,
    /// The private key text is not a cosign encrypted key.
    #[error(
        "{PRIVATE_KEY_FILE} is not a cosign private key: {0}; use the \
         \"ENCRYPTED SIGSTORE PRIVATE KEY\" file made by `ferry key generate` or \
         `cosign generate-key-pair`"
    )]
    BadPrivateKey(String),
    /// The private key opened but is not an ECDSA P-256 key.
    #[error(
        "{PRIVATE_KEY_FILE} holds {0}, but ferry signs only with ECDSA P-256 keys \
         (cosign's default); make one with `ferry key generate`"
    )]
    UnsupportedKey(String),
    /// The public key text is not an ECDSA P-256 public key.
    #[error(
        "{PUBLIC_KEY_FILE} is not a usable public key: {0}; give the ECDSA P-256 \
         \"PUBLIC KEY\" PEM file written next to {PRIVATE_KEY_FILE}"
    )]
    BadPublicKey(String),
    /// The signature text cannot be decoded.
    #[error(
        "the signature is malformed: {0}; the .sig file is damaged or is not a cosign blob \
         signature, so sign the bundle again"
    )]
    MalformedSignature(String),
    /// The signature is well-formed but does not verify.
    #[error(
        "signature does not match: index.json was changed after signing, or it was signed \
         with another key"
    )]
    Mismatch,
    /// The crypto library failed where it should not (randomness, encoding).
    #[error("{action} failed: {reason}")]
    Crypto {
        /// What was being done.
        action: &'static str,
        /// The library's own message.
        reason: String,
    },
}

/// A new key pair, PEM-encoded, ready to be written to `cosign.key` and `cosign.pub`.
pub struct GeneratedKeyPair {
    /// Encrypted private key PEM for `cosign.key`.
    pub private_pem: String,
    /// Public key PEM for `cosign.pub`.
    pub public_pem: String,
}

// Hand-written so the encrypted key never lands in logs either.
impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("private_pem", &"<redacted>")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

/// Makes a new ECDSA P-256 key pair, the private half encrypted with `password` (may be empty).
pub fn generate_key_pair(password: &[u8]) -> Result<GeneratedKeyPair, SignError> {
    let keys = EcdsaKeys::new(EllipticCurve::P256).map_err(crypto("generating a key"))?;
    let private_pem = keys
        .private_key_to_encrypted_pem(password)
        .map_err(crypto("encrypting the private key"))?;
    // sigstore writes CRLF line ends; cosign writes LF, and so do we, so the files look alike
    // and diff cleanly.
    let private = pem::parse(private_pem.as_bytes()).map_err(crypto("re-encoding the key"))?;
    let public = public_key_of(&keys)?;
    Ok(GeneratedKeyPair {
        private_pem: pem_lf(&private),
        public_pem: public.to_pem(),
    })
}

/// A decrypted private key that signs blobs.
pub struct SigningKey {
    signer: EcdsaSigner,
    public: VerifyingKey,
}

// Shows only the public half: a Debug print must never leak the private key.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Decrypts a `cosign.key` PEM (either label) with `password`.
    pub fn from_encrypted_pem(pem: &str, password: &[u8]) -> Result<Self, SignError> {
        // Check the framing first: it is cheap, while a decryption attempt costs a full scrypt
        // run and sigstore would also take an unencrypted "PRIVATE KEY" block, which cosign
        // refuses.
        let block = pem::parse(pem.as_bytes())
            .map_err(|e| SignError::BadPrivateKey(format!("no PEM block found ({e})")))?;
        match block.tag() {
            SIGSTORE_PRIVATE_KEY_PEM_LABEL | COSIGN_PRIVATE_KEY_PEM_LABEL => {}
            PUBLIC_KEY_PEM_LABEL => {
                return Err(SignError::BadPrivateKey(format!(
                    "it is a public key; give the private key, {PRIVATE_KEY_FILE}"
                )));
            }
            tag if tag.contains("PRIVATE KEY") => {
                return Err(SignError::BadPrivateKey(format!(
                    "it is an unencrypted or foreign \"{tag}\" block (import it first with \
                     `cosign import-key-pair`)"
                )));
            }
            tag => {
                return Err(SignError::BadPrivateKey(format!(
                    "it holds a \"{tag}\" PEM block"
                )));
            }
        }

        let keys =
            EcdsaKeys::from_encrypted_pem(pem.as_bytes(), password).map_err(|e| match e {
                // sigstore reports a failed secretbox open (wrong password, or a ciphertext that
                // was edited) under this variant; nothing else on this path uses it.
                SigstoreError::PrivateKeyEncryptError(_) => SignError::WrongPassword,
                // Decrypted fine, but the PKCS#8 inside is no EC key (cosign can import RSA and
                // Ed25519 keys too).
                SigstoreError::KeyParsingError(reason) => SignError::UnsupportedKey(format!(
                    "a key that is not a PKCS#8 ECDSA key ({reason})"
                )),
                other => SignError::BadPrivateKey(other.to_string()),
            })?;
        match keys.to_wrapped_ecdsa_keys() {
            Ok(ECDSAKeys::P256(_)) => {}
            Ok(ECDSAKeys::P384(_)) => return Err(SignError::UnsupportedKey("a P-384 key".into())),
            Ok(ECDSAKeys::P521(_)) => return Err(SignError::UnsupportedKey("a P-521 key".into())),
            Err(e) => return Err(SignError::BadPrivateKey(e.to_string())),
        }
        let signer = keys
            .to_signer()
            .map_err(|e| SignError::BadPrivateKey(e.to_string()))?;
        let public = public_key_of(&keys)?;
        Ok(Self { signer, public })
    }

    /// Signs `data` (ECDSA P-256 over its SHA-256) and returns the base64 DER signature.
    pub fn sign(&self, data: &[u8]) -> Result<String, SignError> {
        let der = self.signer.sign(data).map_err(crypto("signing"))?;
        Ok(BASE64.encode(der))
    }

    /// The public half, to write `cosign.pub` or to name the key in messages.
    pub fn public_key(&self) -> VerifyingKey {
        self.public.clone()
    }
}

/// An ECDSA P-256 public key that checks blob signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// SubjectPublicKeyInfo DER: the bytes cosign.pub carries and the fingerprint hashes.
    spki_der: Vec<u8>,
}

// The fingerprint is what a person compares, so Debug prints that instead of DER bytes.
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifyingKey")
            .field(&self.fingerprint())
            .finish()
    }
}

impl VerifyingKey {
    /// Reads a `cosign.pub` PEM; a private key or anything else is refused with a clear error.
    pub fn from_pem(pem: &str) -> Result<Self, SignError> {
        let block = pem::parse(pem.as_bytes())
            .map_err(|e| SignError::BadPublicKey(format!("no PEM block found ({e})")))?;
        match block.tag() {
            PUBLIC_KEY_PEM_LABEL => {}
            // The classic mix-up: --key cosign.key where cosign.pub was meant.
            tag if tag.contains("PRIVATE KEY") => {
                return Err(SignError::BadPublicKey(format!(
                    "it is a private key (\"{tag}\"); give {PUBLIC_KEY_FILE} instead"
                )));
            }
            tag => {
                return Err(SignError::BadPublicKey(format!(
                    "it holds a \"{tag}\" PEM block"
                )));
            }
        }
        Self::from_spki_der(block.contents())
    }

    /// Checks that DER is a P-256 SubjectPublicKeyInfo and keeps it.
    fn from_spki_der(der: &[u8]) -> Result<Self, SignError> {
        let key = CosignVerificationKey::try_from_der(der)
            .map_err(|e| SignError::BadPublicKey(e.to_string()))?;
        match key {
            CosignVerificationKey::ECDSA_P256_SHA256_ASN1(spki_der) => Ok(Self { spki_der }),
            other => Err(SignError::BadPublicKey(format!(
                "it is a {} key, not ECDSA P-256",
                key_kind(&other)
            ))),
        }
    }

    /// The `cosign.pub` PEM text.
    pub fn to_pem(&self) -> String {
        pem_lf(&pem::Pem::new(PUBLIC_KEY_PEM_LABEL, self.spki_der.clone()))
    }

    /// Checks a base64 signature of `data`; surrounding and line-wrapping whitespace is ignored.
    pub fn verify(&self, data: &[u8], signature_b64: &str) -> Result<(), SignError> {
        // Whitespace is dropped everywhere, not just at the ends: `base64` and `openssl base64`
        // wrap at 64/76 columns, and such a signature is still the same signature.
        let compact: String = signature_b64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if compact.is_empty() {
            return Err(SignError::MalformedSignature("it is empty".into()));
        }
        let der = BASE64
            .decode(compact.as_bytes())
            .map_err(|e| SignError::MalformedSignature(format!("not base64 ({e})")))?;
        // The backend only answers yes or no; catching non-signatures here keeps "damaged
        // file" apart from "wrong key". A DER P-256 signature is a SEQUENCE of at most 72 bytes.
        if der.first() != Some(&0x30) || !(8..=72).contains(&der.len()) {
            return Err(SignError::MalformedSignature(
                "it decodes to bytes that are not a DER ECDSA signature".into(),
            ));
        }
        let key = CosignVerificationKey::ECDSA_P256_SHA256_ASN1(self.spki_der.clone());
        match key.verify_signature(Signature::Raw(&der), data) {
            Ok(()) => Ok(()),
            Err(SigstoreError::PublicKeyVerificationError) => Err(SignError::Mismatch),
            Err(e) => Err(SignError::Crypto {
                action: "verifying the signature",
                reason: e.to_string(),
            }),
        }
    }

    /// `sha256:<hex>` of the SubjectPublicKeyInfo DER, for messages and logs.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.spki_der)))
    }
}

/// Password from FERRY_KEY_PASSWORD, falling back to COSIGN_PASSWORD; None when neither is set.
pub fn password_from_env() -> Option<String> {
    password_from(|name| std::env::var_os(name))
}

/// [`password_from_env`] over any variable lookup, so tests need not touch the real
/// environment.
fn password_from(lookup: impl Fn(&str) -> Option<OsString>) -> Option<String> {
    // Set-but-empty counts as set: cosign allows an empty password, and a user who exported
    // FERRY_KEY_PASSWORD= means it, so it must not fall through to COSIGN_PASSWORD.
    let value = lookup(PASSWORD_ENV).or_else(|| lookup(COSIGN_PASSWORD_ENV))?;
    // A password that is not UTF-8 cannot be carried as a String; the lossy form fails to
    // decrypt with a "wrong password" error rather than being silently ignored.
    Some(
        value
            .into_string()
            .unwrap_or_else(|raw| raw.to_string_lossy().into_owned()),
    )
}

/// Public half of sigstore key material as a [`VerifyingKey`].
fn public_key_of(keys: &EcdsaKeys) -> Result<VerifyingKey, SignError> {
    let der = keys
        .public_key_to_der()
        .map_err(crypto("exporting the public key"))?;
    VerifyingKey::from_spki_der(&der)
}

/// PEM with LF line ends and 64-column lines, as cosign and openssl write it.
fn pem_lf(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Human name of a key type sigstore can parse, for "wrong key type" messages.
fn key_kind(key: &CosignVerificationKey) -> &'static str {
    match key {
        CosignVerificationKey::RSA_PSS_SHA256(_) | CosignVerificationKey::RSA_PKCS1_SHA256(_) => {
            "RSA"
        }
        CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => "ECDSA P-256",
        CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_) => "ECDSA P-384",
        CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_) => "ECDSA P-521",
        CosignVerificationKey::ED25519(_) => "Ed25519",
    }
}

/// Maps an unexpected library failure to [`SignError::Crypto`].
fn crypto<E: fmt::Display>(action: &'static str) -> impl FnOnce(E) -> SignError {
    move |e| SignError::Crypto {
        action,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::OnceLock;

    // Fixtures written by an independent implementation of the format (Python: hashlib.scrypt,
    // PyNaCl secretbox, `cryptography` PKCS#8), following go-securesystemslib's `encrypted`
    // package, so these tests check compatibility and not just that we agree with ourselves.

    /// Today's label and cosign's current scrypt cost (N = 65536).
    const CURRENT_KEY: &str = "\
-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiIrK2x3TmE1ZVRtRXdsUExYTXlSZlZITHI1TnJzZXhT
YkdSSDd0ZitxcTJFPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJHdDViNEhuU0ZYUFkweUh1aVZzeVgwVEsrSS9ka0d2eCJ9LCJj
aXBoZXJ0ZXh0IjoiY0w3bFdrTHpja1piMG9Sa3JPRlZ6Q2krY0RCL0NUM3cvSzBw
UmhSVjBIWlQrdzRSV0xiOGFQcDNVd0xKZ1FhckZzSnY5cmpwcmM5em8xTVdJbit1
ODB6cExVMFRMa3ZSVzRIRmpORzlHYmVxV2MrdGxjM2Yvb0hTL0JuUHhaQ1R6QVds
dXp0SzFtb2pvR0tHY2F5d2N6ckMrNEc3Z2NKdDF0dVh4RXRzemdVNmZzZXZtTllE
bmpDYkcrRVFBRzZacDNoR29DZkZWVDliZWc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";
    const CURRENT_PASSWORD: &[u8] = b"ferry test password";
    const CURRENT_PUB: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdzHHHfBY6nINYJh0PIKHvulnKfPT
O/zPu2hEg/FCSYramE2pzUaMx9inJIMfL76CDbA76gghYRk6IaEzxpojHw==
-----END PUBLIC KEY-----
";

    /// The older label, the older scrypt cost (N = 32768) and an empty password.
    const LEGACY_KEY: &str = "\
-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3djZJMzBYZnFFQVdmNzJUUFZtUmNkOGV4VmdHOWRN
MHlwS3F5dkVIQ2pzPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJNak5Ha0xvdnZLbi9OTTRtWHAycXpJUjF5UUVyMksrQiJ9LCJj
aXBoZXJ0ZXh0IjoiNTU2TFIwcFgwYzZheW9pRE9ORGxycWgwMlRmNWxIcG5kajFJ
eHdjVGVrdWpRYW9peVM5V2JLdU5ZUEZJWkpHSlpseHFuT3l6dndsYktzeENNenp6
REhNRnZ3UmhWVjE4V2lLb3l6YkFCbEs0UDJwbnd2ZXpWRi9aV3BXOXZpMU4wVjUv
cDM1ZzNWaVZjbzFGQVhLajBpVVhUWklKR3QyYVhRczd0M09sL2hXZ1V5Uys0cGd5
TmRYWmhsTGpjclVnaExFTS9RN2VHTnVWcUE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
";
    const LEGACY_PUB: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwz+ofpBFO1ZfMUZoc3v+TwcgyuWq
3arJ1lAOOvQRR9t6CGOei3YrN66XPt7lK+O3KWb/qXW93X90a+nQ1pldsw==
-----END PUBLIC KEY-----
";

    const INDEX: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;

    // Every decryption runs scrypt, which is slow in debug builds: decrypt each fixture once
    // per test binary and share it.
    fn current_key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::from_encrypted_pem(CURRENT_KEY, CURRENT_PASSWORD).unwrap())
    }

    fn legacy_key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::from_encrypted_pem(LEGACY_KEY, b"").unwrap())
    }

    /// The JSON document inside an encrypted key PEM.
    fn key_document(private_pem: &str) -> String {
        String::from_utf8(pem::parse(private_pem).unwrap().into_contents()).unwrap()
    }

    #[test]
    fn generated_key_round_trips_and_looks_like_cosigns() {
        let pair = generate_key_pair(b"s3cret").unwrap();
        assert!(
            pair.private_pem
                .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        );
        assert!(!pair.private_pem.contains('\r'));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let doc = key_document(&pair.private_pem);
        for field in [
            r#""kdf":{"name":"scrypt","params":{"N":"#,
            r#""r":8,"p":1}"#,
            r#""cipher":{"name":"nacl/secretbox","nonce":""#,
            r#""ciphertext":""#,
        ] {
            assert!(doc.contains(field), "{field} missing from {doc}");
        }

        let key = SigningKey::from_encrypted_pem(&pair.private_pem, b"s3cret").unwrap();
        let public = VerifyingKey::from_pem(&pair.public_pem).unwrap();
        assert_eq!(key.public_key(), public);
        assert_eq!(public.to_pem(), pair.public_pem);

        let signature = key.sign(INDEX).unwrap();
        public.verify(INDEX, &signature).unwrap();
        // A trailing newline (as `echo` or an editor adds) and line wrapping are tolerated.
        let wrapped = format!("{}\n{}\n", &signature[..20], &signature[20..]);
        public.verify(INDEX, &wrapped).unwrap();
    }

    #[test]
    fn current_cosign_key_decrypts_to_its_public_key() {
        // Today's label with N = 65536, as `cosign generate-key-pair` writes it.
        assert_eq!(current_key().public_key().to_pem(), CURRENT_PUB);
        let fingerprint = current_key().public_key().fingerprint();
        assert!(fingerprint.starts_with("sha256:"));
        assert_eq!(fingerprint.len(), "sha256:".len() + 64);
    }

    #[test]
    fn older_label_with_empty_password_is_read() {
        // "ENCRYPTED COSIGN PRIVATE KEY", N = 32768 and an explicitly empty password.
        assert_eq!(legacy_key().public_key().to_pem(), LEGACY_PUB);
        let signature = legacy_key().sign(INDEX).unwrap();
        VerifyingKey::from_pem(LEGACY_PUB)
            .unwrap()
            .verify(INDEX, &signature)
            .unwrap();
    }

    #[test]
    fn wrong_password_is_reported_as_such() {
        let err = SigningKey::from_encrypted_pem(CURRENT_KEY, b"not the password").unwrap_err();
        assert!(matches!(err, SignError::WrongPassword), "{err:?}");
        assert_eq!(
            err.to_string(),
            "wrong password for cosign.key (set FERRY_KEY_PASSWORD or COSIGN_PASSWORD)"
        );
    }

    #[test]
    fn tampered_data_and_foreign_signatures_fail() {
        let public = current_key().public_key();
        let signature = current_key().sign(INDEX).unwrap();

        let mut tampered = INDEX.to_vec();
        tampered[3] ^= 1;
        let err = public.verify(&tampered, &signature).unwrap_err();
        assert!(matches!(err, SignError::Mismatch), "{err:?}");
        assert!(err.to_string().contains("changed after signing"));

        let foreign = legacy_key().sign(INDEX).unwrap();
        let err = public.verify(INDEX, &foreign).unwrap_err();
        assert!(matches!(err, SignError::Mismatch), "{err:?}");
        assert_ne!(
            public.fingerprint(),
            legacy_key().public_key().fingerprint()
        );
    }

    #[test]
    fn malformed_inputs_give_clear_errors() {
        let public = VerifyingKey::from_pem(CURRENT_PUB).unwrap();

        for bad in ["", "   \n", "not base64 at all!", "AAAA", "MEUCIQ"] {
            let err = public.verify(INDEX, bad).unwrap_err();
            assert!(
                matches!(err, SignError::MalformedSignature(_)),
                "{bad:?}: {err:?}"
            );
        }

        // Garbage, a private key given as the public one, and a damaged body.
        for bad in [
            "hello",
            CURRENT_KEY,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            let err = VerifyingKey::from_pem(bad).unwrap_err();
            assert!(matches!(err, SignError::BadPublicKey(_)), "{err:?}");
        }
        let err = VerifyingKey::from_pem(CURRENT_KEY).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");

        // These are refused before any scrypt work: framing is checked first.
        for bad in [
            "hello",
            CURRENT_PUB,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n\
             -----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        ] {
            let err = SigningKey::from_encrypted_pem(bad, b"x").unwrap_err();
            assert!(matches!(err, SignError::BadPrivateKey(_)), "{err:?}");
        }
    }

    #[test]
    fn openssl_accepts_our_signature() {
        let dir = tempfile::tempdir().unwrap();
        let public_path = dir.path().join(PUBLIC_KEY_FILE);
        let data_path = dir.path().join("index.json");
        let sig_path = dir.path().join("index.json.sig.der");
        let key = current_key();
        let signature = key.sign(INDEX).unwrap();
        std::fs::write(&public_path, key.public_key().to_pem()).unwrap();
        std::fs::write(&data_path, INDEX).unwrap();
        // openssl wants the raw DER; that is what `base64 -d index.json.sig` gives it.
        std::fs::write(&sig_path, BASE64.decode(&signature).unwrap()).unwrap();

        let run = |data: &std::path::Path| {
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public_path)
                .arg("-signature")
                .arg(&sig_path)
                .arg(data)
                .output()
        };
        let output = match run(&data_path) {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("note: openssl is not installed; skipping the openssl cross-check");
                return;
            }
            Err(e) => panic!("running openssl: {e}"),
        };
        assert!(
            output.status.success(),
            "openssl rejected the signature: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "Verified OK"
        );

        // And openssl must not be a rubber stamp: changed data fails there too.
        std::fs::write(&data_path, b"{}").unwrap();
        assert!(!run(&data_path).unwrap().status.success());
    }

    #[test]
    fn password_comes_from_ferry_then_cosign_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(password_from(env(&[])), None);
        assert_eq!(
            password_from(env(&[("COSIGN_PASSWORD", "c")])).as_deref(),
            Some("c")
        );
        assert_eq!(
            password_from(env(&[
                ("FERRY_KEY_PASSWORD", "f"),
                ("COSIGN_PASSWORD", "c")
            ]))
            .as_deref(),
            Some("f")
        );
        // Explicitly empty is a real (empty) password and wins over the fallback.
        assert_eq!(
            password_from(env(&[("FERRY_KEY_PASSWORD", ""), ("COSIGN_PASSWORD", "c")])).as_deref(),
            Some("")
        );
    }
}
