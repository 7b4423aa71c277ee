//! `ferry registries-config`: a K3s registries.yaml that sends every upstream registry of a
//! bundle to the site registry, with the rewrite the import mapping needs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde::Serialize;

use crate::cli::RegistriesConfigArgs;
use crate::layout::Layout;
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::manifest::reference::Reference;
use crate::mapping::Target;
use crate::progress::Ui;

/// K3s's registries.yaml (see the K3s "Private Registry Configuration" documentation).
#[derive(Serialize)]
pub struct RegistriesYaml {
    /// Upstream registry -> mirror.
    pub mirrors: BTreeMap<String, Mirror>,
    /// Site registry host -> auth and TLS.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, HostConfig>,
}

/// One mirror entry.
#[derive(Serialize)]
pub struct Mirror {
    /// Endpoints tried in order.
    pub endpoint: Vec<String>,
    /// Repository rewrites applied before the request goes to the endpoint.
    pub rewrite: BTreeMap<String, String>,
}

/// Auth and TLS for the site registry.
#[derive(Serialize, Default)]
pub struct HostConfig {
    /// Basic credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<HostAuth>,
    /// TLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<HostTls>,
}

/// Basic credentials.
#[derive(Serialize)]
pub struct HostAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// TLS settings.
#[derive(Serialize)]
pub struct HostTls {
    /// CA certificate file on the node.
    pub ca_file: String,
}

/// The registries.yaml for `registries` mirrored to `target`.
pub fn render(
    target: &Target,
    registries: &BTreeSet<String>,
    scheme: &str,
    ca_file: Option<String>,
    auth: Option<HostAuth>,
) -> RegistriesYaml {
    let mirrors = registries
        .iter()
        .map(|registry| {
            (
                registry.clone(),
                Mirror {
                    endpoint: vec![format!("{scheme}://{}", target.host)],
                    rewrite: BTreeMap::from([(
                        "^(.*)$".to_string(),
                        format!("{}/$1", target.rewrite_prefix_for(registry)),
                    )]),
                },
            )
        })
        .collect();
    let mut configs = BTreeMap::new();
    if auth.is_some() || ca_file.is_some() {
        configs.insert(
            target.host.clone(),
            HostConfig {
                auth,
                tls: ca_file.map(|ca_file| HostTls { ca_file }),
            },
        );
    }
    RegistriesYaml { mirrors, configs }
}

/// The upstream registries of a bundle's image entries.
pub fn upstream_registries(layout: &Layout) -> anyhow::Result<BTreeSet<String>> {
    let (_, index) = read_verified_index(layout, None)?;
    Ok(upstream_of(&walk(layout, &index).entries))
}

/// The upstream registries of walked entries.
pub fn upstream_of(entries: &[crate::layout::graph::Entry]) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|entry| Reference::parse(&entry.reference).ok())
        .map(|reference| reference.registry().to_string())
        .collect()
}

/// `ferry registries-config` whole: the bundle's upstream registries, rendered for the target
/// as K3s reads them.
pub fn run(ui: &Ui, args: &RegistriesConfigArgs) -> anyhow::Result<RegistriesYaml> {
    let target = Target::parse(&args.to)?;
    let layout = crate::bundle::open_bundle(&args.source, &args.volumes, ui, true)?;
    let registries = upstream_registries(&layout)?;
    let auth = if args.auth_from_env {
        let username = std::env::var("FERRY_REGISTRY_USERNAME")
            .context("--auth-from-env needs FERRY_REGISTRY_USERNAME")?;
        let password = std::env::var("FERRY_REGISTRY_PASSWORD")
            .context("--auth-from-env needs FERRY_REGISTRY_PASSWORD")?;
        Some(HostAuth { username, password })
    } else {
        None
    };
    Ok(render(
        &target,
        &registries,
        &args.scheme,
        args.ca_file.as_ref().map(|p| p.display().to_string()),
        auth,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_k3s_shape() {
        let target = Target::parse("harbor.site:8443/platform").unwrap();
        let registries = BTreeSet::from(["docker.io".to_string(), "localhost:5000".to_string()]);
        let yaml = render(
            &target,
            &registries,
            "https",
            Some("/etc/ssl/site-ca.pem".into()),
            None,
        );
        let text = serde_saphyr::to_string(&yaml).unwrap();
        insta::assert_snapshot!(text, @r#"
        mirrors:
          docker.io:
            endpoint:
            - https://harbor.site:8443
            rewrite:
              ^(.*)$: platform/docker.io/$1
          "localhost:5000":
            endpoint:
            - https://harbor.site:8443
            rewrite:
              ^(.*)$: platform/localhost_5000/$1
        configs:
          "harbor.site:8443":
            tls:
              ca_file: /etc/ssl/site-ca.pem
        "#);
        // It parses back as YAML with the same shape K3s reads.
        let parsed: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
            serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            parsed["mirrors"]["localhost:5000"]["rewrite"]["^(.*)$"],
            "platform/localhost_5000/$1"
        );
    }
}
