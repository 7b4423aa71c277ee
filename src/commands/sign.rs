//! `ferry sign`.

use anyhow::Context;
use serde::Serialize;

use crate::cli::SignArgs;
use crate::digest::Digest;
use crate::layout::Layout;
use crate::progress::Ui;

#[derive(Serialize)]
struct Signed {
    bundle: String,
    index_digest: Digest,
    fingerprint: String,
}

/// Signs the bundle's index.json into index.json.sig.
pub fn run(ui: &Ui, args: &SignArgs) -> anyhow::Result<()> {
    let layout = Layout::open(&args.dir)?;
    let key = super::load_signing_key(&args.key)?;
    let result = sign_layout(&layout, &key)?;
    ui.result(&result, || {
        format!(
            "signed {}/index.json ({}) with key {}\n",
            result.bundle, result.index_digest, result.fingerprint
        )
    });
    Ok(())
}

/// Signs a layout's current index and returns what was signed.
fn sign_layout(layout: &Layout, key: &crate::sign::SigningKey) -> anyhow::Result<Signed> {
    let bytes = layout.read_index_bytes()?.with_context(|| {
        format!(
            "{} has no index.json: build it first with `ferry build`",
            layout.root().display()
        )
    })?;
    let signature = key.sign(&bytes)?;
    layout.write_signature(&signature)?;
    Ok(Signed {
        bundle: layout.root().display().to_string(),
        index_digest: Digest::of_bytes(&bytes),
        fingerprint: key.public_key().fingerprint(),
    })
}

/// Signs after a build; returns the key fingerprint.
pub fn sign_built(layout: &Layout, key: &crate::sign::SigningKey) -> anyhow::Result<String> {
    Ok(sign_layout(layout, key)?.fingerprint)
}
