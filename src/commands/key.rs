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

/// Writes the private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
