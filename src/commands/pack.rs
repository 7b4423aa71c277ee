//! `ferry pack` and `ferry unpack`.

use anyhow::Context;

use crate::archive::pack::{PackOptions, pack};
use crate::archive::parse_volume_size;
use crate::archive::stick::running_binary;
use crate::archive::unpack::unpack;
use crate::cli::{PackArgs, UnpackArgs};
use crate::layout::Layout;
use crate::progress::{Ui, human_bytes};

/// Runs `ferry pack`.
pub fn run(ui: &Ui, args: &PackArgs) -> anyhow::Result<()> {
    let layout = Layout::open(&args.dir)?;
    // Decrypt the key first: a wrong password should fail before volumes are written.
    let signing_key = match &args.key {
        Some(path) => Some(std::sync::Arc::new(super::load_signing_key(path)?)),
        None => None,
    };
    let ferry_binary = match &args.ferry_binary {
        Some(path) => path.clone(),
        None => running_binary().context(
            "cannot find this ferry's own binary to carry beside the volumes; give it with --ferry-binary PATH",
        )?,
    };
    let options = PackOptions {
        volume_size: args
            .volume_size
            .as_deref()
            .map(parse_volume_size)
            .transpose()?,
        zstd: args.zstd,
        ferry_binary: Some(ferry_binary),
        signing_key,
    };
    let total = layout.stored_blob_bytes();
    let bar = ui.bytes_bar(total, "pack");
    let report = pack(&layout, &args.out, &options, &|n| bar.inc(n))
        .with_context(|| format!("cannot pack {}", args.dir.display()))?;
    bar.finish_and_clear();
    ui.result(&report, || {
        let mut t = String::new();
        for v in &report.volumes {
            t.push_str(&format!(
                "{}  {}  {}\n",
                v.path.display(),
                human_bytes(v.size),
                v.sha256
            ));
        }
        t.push_str(&format!(
            "packed {} blobs ({}) into {} volume(s){}; checksums in {} (check with `sha256sum -c`)\n",
            report.blobs,
            human_bytes(report.blob_bytes),
            report.volumes.len(),
            if report.chunked_blobs > 0 {
                format!(", {} blob(s) split into chunks", report.chunked_blobs)
            } else {
                String::new()
            },
            report.checksums.display()
        ));
        if let Some(binary) = &report.ferry_binary {
            t.push_str(&format!(
                "ferry binary: {} ({}), listed in {}\n",
                binary.path.display(),
                human_bytes(binary.size),
                report.checksums.display()
            ));
        }
        match (&report.checksums_signature, &report.signed_by) {
            (Some(sig), Some(key)) => t.push_str(&format!(
                "{} signed with key {key}: {} (check with `openssl dgst -sha256 -verify cosign.pub -signature <(base64 -d SHA256SUMS.sig) SHA256SUMS`)\n",
                report.checksums.display(),
                sig.display()
            )),
            _ => t.push_str(&format!(
                "{} is not signed (no --key)\n",
                report.checksums.display()
            )),
        }
        t
    });
    if report.checksums_signature.is_none() {
        ui.warn(format!(
            "{} is not signed: on site nothing proves where the volumes and the ferry binary beside them came from; pack again with --key cosign.key (the release key)",
            report.checksums.display()
        ));
    }
    Ok(())
}

/// Runs `ferry unpack`.
pub fn run_unpack(ui: &Ui, args: &UnpackArgs) -> anyhow::Result<()> {
    // The bundle is about as large as its volumes; what an earlier run wrote is kept.
    let volumes: u64 = args
        .volumes
        .iter()
        .filter_map(|v| std::fs::metadata(v).ok())
        .map(|m| m.len())
        .sum();
    crate::fsutil::ensure_space(
        &args.out,
        volumes.saturating_sub(crate::fsutil::tree_size(&args.out)),
        &format!("the bundle unpacked from {} volume(s)", args.volumes.len()),
    )?;
    let bar = ui.bytes_bar(0, "unpack");
    let report = unpack(
        &args.volumes,
        &args.out,
        &|total| bar.set_length(total),
        &|n| bar.inc(n),
    )
    .with_context(|| {
        format!(
            "cannot unpack into {}; what was checked and written stays, run the same command again",
            args.out.display()
        )
    })?;
    bar.finish_and_clear();
    ui.result(&report, || {
        format!(
            "unpacked {} volume(s) into {}: {} blobs ({}), {} joined from chunks\nnext: ferry verify {} --key cosign.pub\n",
            report.volumes,
            args.out.display(),
            report.blobs,
            human_bytes(report.bytes),
            report.joined_blobs,
            args.out.display()
        )
    });
    Ok(())
}
