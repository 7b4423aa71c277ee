//! `ferry pack` and `ferry unpack`.

use anyhow::Context;

use crate::archive::pack::{PackOptions, pack};
use crate::archive::parse_volume_size;
use crate::archive::unpack::unpack;
use crate::cli::{PackArgs, UnpackArgs};
use crate::layout::Layout;
use crate::progress::{Ui, human_bytes};

/// Runs `ferry pack`.
pub fn run(ui: &Ui, args: &PackArgs) -> anyhow::Result<()> {
    let layout = Layout::open(&args.dir)?;
    let options = PackOptions {
        volume_size: args
            .volume_size
            .as_deref()
            .map(parse_volume_size)
            .transpose()?,
        zstd: args.zstd,
    };
    let total = std::fs::read_dir(layout.root().join("blobs/sha256"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
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
        t
    });
    Ok(())
}

/// Runs `ferry unpack`.
pub fn run_unpack(ui: &Ui, args: &UnpackArgs) -> anyhow::Result<()> {
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
