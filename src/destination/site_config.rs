//! The site configuration `ferry import --site` renders for the cluster install: a Helm
//! repositories.yaml and the variables of the k3s-ansible collection. (K3s registries.yaml
//! and the apt sources come from their own targets.)

use serde::Serialize;

/// File names in the output directory.
pub const REGISTRIES_YAML: &str = "registries.yaml";
/// The apt target's file, copied beside the other site files (its own name).
pub use crate::destination::apt::KEYRING_FILE as APT_KEYRING;
/// The apt target's file, copied beside the other site files (its own name).
pub use crate::destination::apt::SOURCES_FILE as APT_SOURCES;
/// Helm's repositories.yaml.
pub const HELM_REPOSITORIES: &str = "helm-repositories.yaml";
/// k3s-ansible variables.
pub const ANSIBLE_VARS: &str = "ansible-vars.yaml";
/// What was rendered.
pub const SITE_JSON: &str = "site.json";

/// Helm's `repositories.yaml` (what `helm repo add` keeps), with one repository.
#[derive(Serialize)]
struct HelmRepositories<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    generated: &'a str,
    repositories: Vec<HelmRepository<'a>>,
}

#[derive(Serialize)]
struct HelmRepository<'a> {
    name: &'a str,
    url: &'a str,
    #[serde(rename = "caFile")]
    ca_file: &'a str,
    #[serde(rename = "certFile")]
    cert_file: &'a str,
    #[serde(rename = "keyFile")]
    key_file: &'a str,
    insecure_skip_tls_verify: bool,
    pass_credentials_all: bool,
    username: &'a str,
    password: &'a str,
}

/// A Helm repositories.yaml with one entry, `name` at `url`.
pub fn helm_repositories(name: &str, url: &str, generated: &str) -> String {
    let doc = HelmRepositories {
        api_version: "",
        generated,
        repositories: vec![HelmRepository {
            name,
            url,
            ca_file: "",
            cert_file: "",
            key_file: "",
            insecure_skip_tls_verify: false,
            pass_credentials_all: false,
            username: "",
            password: "",
        }],
    };
    serde_saphyr::to_string(&doc).expect("plain strings always serialise")
}

/// The k3s-ansible collection's variables for this site.
#[derive(Serialize, Default)]
pub struct AnsibleVars {
    /// The directory with the K3s binary, install script and image archives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub airgap_dir: Option<String>,
    /// The content of /etc/rancher/k3s/registries.yaml.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registries_config_yaml: Option<String>,
    /// Extra K3s server configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_config_yaml: Option<String>,
    /// Manifests K3s applies at start.
    pub extra_manifests: Vec<String>,
    /// The K3s release the bundle carries (from its binary's release URL), so the install
    /// puts exactly that version on the nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k3s_version: Option<String>,
}

/// The K3s version in a release download URL: `.../k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s`
/// gives `v1.31.4+k3s1`.
pub fn k3s_version_from_url(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("/k3s/releases/download/")?;
    let (version, _) = rest.split_once('/')?;
    let decoded = percent_encoding::percent_decode_str(version)
        .decode_utf8()
        .ok()?
        .into_owned();
    (decoded.starts_with('v') && decoded.contains("k3s")).then_some(decoded)
}

/// The server configuration that makes K3s pull its system images from `host`.
pub fn server_config(system_default_registry: &str) -> String {
    format!("system-default-registry: {system_default_registry}\n")
}

/// ansible-vars.yaml, with a header naming the site.
pub fn ansible_vars(site: &str, vars: &AnsibleVars) -> String {
    format!(
        "# k3s-ansible variables for site {site}, written by ferry\n{}",
        serde_saphyr::to_string(vars).expect("plain strings always serialise")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_version_comes_from_the_release_url() {
        assert_eq!(
            k3s_version_from_url(
                "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s"
            )
            .as_deref(),
            Some("v1.31.4+k3s1")
        );
        assert_eq!(
            k3s_version_from_url("https://example.com/cilium/releases/download/v1/x"),
            None
        );
    }

    #[test]
    fn helm_repositories_parses_back() {
        let text = helm_repositories("plant-a", "http://m/charts", "2026-01-01T00:00:00Z");
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["repositories"][0]["name"], "plant-a");
        assert_eq!(v["repositories"][0]["url"], "http://m/charts");
    }

    #[test]
    fn ansible_vars_keep_multiline_yaml() {
        let vars = AnsibleVars {
            airgap_dir: Some("/srv/airgap".into()),
            registries_config_yaml: Some("mirrors:\n  docker.io:\n    endpoint: [x]\n".into()),
            server_config_yaml: Some(server_config("h:5000")),
            extra_manifests: vec![],
            k3s_version: None,
        };
        let text = ansible_vars("a", &vars);
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["airgap_dir"], "/srv/airgap");
        assert_eq!(
            v["registries_config_yaml"],
            "mirrors:\n  docker.io:\n    endpoint: [x]\n"
        );
        assert_eq!(v["server_config_yaml"], "system-default-registry: h:5000\n");
        assert_eq!(v["extra_manifests"], serde_json::json!([]));
    }
}
