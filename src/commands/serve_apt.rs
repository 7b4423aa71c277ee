//! The `/apt/` part of `ferry serve`.

use std::sync::Arc;

use anyhow::Context;

use crate::layout::Layout;
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::openpgp::SiteKey;
use crate::progress::Ui;
use crate::serve::apt::AptMirror;
use crate::sign::VerifyingKey;

/// Renders the bundle's apt mirror, signed with the site key (blocking file work).
pub fn open(
    layout: &Layout,
    key: Option<&VerifyingKey>,
    site: &SiteKey,
    suite: Option<&str>,
) -> anyhow::Result<Option<Arc<AptMirror>>> {
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    let mirror = AptMirror::open(layout, &walked.entries, site, suite).with_context(|| {
        format!(
            "cannot serve the apt packages of {}",
            layout.root().display()
        )
    })?;
    Ok(mirror.map(Arc::new))
}

/// Says whether the bundle's apt entries are served.
pub fn report(ui: &Ui, mirror: Option<&AptMirror>, entries: usize) {
    match mirror {
        Some(m) => ui.status(format!(
            "apt: {} package entries under /apt/ (suites {}); hosts: /apt/ferry.sources and /apt/ferry-apt.gpg",
            m.packages,
            m.suites().collect::<Vec<_>>().join(", ")
        )),
        None => ui.status(format!(
            "{entries} apt entr{} not served: give --apt-signing-key (made by `ferry key generate --apt`) to serve them under /apt/",
            if entries == 1 { "y is" } else { "ies are" }
        )),
    }
}
