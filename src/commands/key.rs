//! `ferry key generate`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::progress::Ui;
use crate::sign::{PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, generate_key_pair};

#[derive(Serialize)]
struct Generated {
    private_key: String,
    public_key: String,
    fingerprint: String,
}

/// Writes cosign.key and cosign.pub into `dir`.
pub fn generate(ui: &Ui, dir: &Path, force: bool) -> anyhow::Result<()> {
    let password = super::key_password()?;
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    for p in [&private_path, &public_path] {
        if p.exists() && !force {
            bail!(
                "{} already exists; move it away or pass --force to replace it",
                p.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pair = generate_key_pair(password.as_bytes()).context("cannot generate a key pair")?;
    write_private(&private_path, pair.private_pem.as_bytes())?;
    crate::layout::write_atomic(&public_path, pair.public_pem.as_bytes())?;
    let fingerprint = crate::sign::VerifyingKey::from_pem(&pair.public_pem)?.fingerprint();
    let result = Generated {
        private_key: private_path.display().to_string(),
        public_key: public_path.display().to_string(),
        fingerprint,
    };
    ui.result(&result, || {
        format!(
            "wrote {} (encrypted) and {}\nkey fingerprint {}\n",
            result.private_key, result.public_key, result.fingerprint
        )
    });
    Ok(())
}

/// Writes a private key readable by its owner only (0600); the public halves are public.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::Access::Secret)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// File names of the apt site key `ferry key generate --apt` writes.
pub const APT_SECRET_FILE: &str = "ferry-apt-secret.asc";
/// The armored public key.
pub const APT_PUBLIC_FILE: &str = "ferry-apt-public.asc";
/// The binary keyring hosts name in `Signed-By`.
pub const APT_KEYRING_FILE: &str = crate::destination::apt::KEYRING_FILE;

#[derive(Serialize)]
struct GeneratedApt {
    secret_key: String,
    public_key: String,
    keyring: String,
    fingerprint: String,
}

/// Writes the site's apt signing key: armored secret (password-protected) and public key, and
/// the binary keyring.
pub fn generate_apt(ui: &Ui, dir: &Path, force: bool) -> anyhow::Result<()> {
    let password = super::key_password()?;
    let paths = [
        dir.join(APT_SECRET_FILE),
        dir.join(APT_PUBLIC_FILE),
        dir.join(APT_KEYRING_FILE),
    ];
    for p in &paths {
        if p.exists() && !force {
            bail!(
                "{} already exists; move it away or pass --force to replace it",
                p.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = crate::openpgp::SiteKey::generate("ferry apt site key", &password)?;
    write_private(&paths[0], key.secret_armored.as_bytes())?;
    crate::layout::write_atomic(&paths[1], key.public_armored.as_bytes())?;
    crate::layout::write_atomic(&paths[2], &key.public_binary)?;
    let result = GeneratedApt {
        secret_key: paths[0].display().to_string(),
        public_key: paths[1].display().to_string(),
        keyring: paths[2].display().to_string(),
        fingerprint: key.fingerprint,
    };
    ui.result(&result, || {
        format!(
            "wrote {} (protected by the password), {} and the keyring {}\nOpenPGP fingerprint {}\n",
            result.secret_key, result.public_key, result.keyring, result.fingerprint
        )
    });
    Ok(())
}
