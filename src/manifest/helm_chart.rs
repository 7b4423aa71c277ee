//! Chart sources and names as the manifest writes them, and the names a chart has in a bundle
//! and in a site registry.
//!
//! A chart's bundle reference (the `org.opencontainers.image.ref.name` of its index entry) is
//! its identity plus `:<version>`: `oci://registry-1.docker.io/bitnamicharts/redis:20.6.1`
//! for a chart from an OCI registry, `https://helm.cilium.io/cilium:1.16.5` for a chart from
//! an HTTP repository. Neither a chart name nor a version can hold `/` or `:`, so the last `:`
//! starts the version and the last `/` before it the name.

use crate::manifest::reference::Reference;

/// Longest chart name accepted (it becomes a file name).
const NAME_MAX_LEN: usize = 128;

/// Checks and normalizes an HTTP chart repository URL (no trailing `/`).
pub fn repo_url(input: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(input.trim()).map_err(|e| {
        format!("invalid chart repository URL {input:?}: {e}; write it as https://host[/path]")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "chart repository {input:?} is not http(s); for an OCI registry write `ref: oci://host/path/name` instead of `repo`"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("chart repository URL {input:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "chart repository URL {input:?} holds credentials; remove them: credentials never go into a manifest"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "chart repository URL {input:?} has a query or fragment; give the plain repository URL (the one `helm repo add` takes)"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Checks a chart name: it names files (`<name>-<version>.tgz`) and repository paths.
pub fn chart_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid chart name {name:?}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}

/// Checks a chart version before it names a file (`<name>-<version>.tgz`).
pub fn chart_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty()
        && version.len() <= NAME_MAX_LEN
        && version.as_bytes()[0].is_ascii_alphanumeric()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid chart version {version:?}: expected a semantic version"
        ))
    }
}

/// Checks a Helm release name (`releaseName`): Helm's rule, a DNS subdomain of at most 53
/// characters.
pub fn release_name(name: &str) -> Result<(), String> {
    if dns_name(name, 53, true) {
        Ok(())
    } else {
        Err(format!(
            "invalid releaseName {name:?}: Helm needs at most 53 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        ))
    }
}

/// Checks a Kubernetes namespace name (a DNS label of at most 63 characters).
pub fn namespace(name: &str) -> Result<(), String> {
    if dns_name(name, 63, false) {
        Ok(())
    } else {
        Err(format!(
            "invalid namespace {name:?}: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

fn dns_name(name: &str, max: usize, dots: bool) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.split('.').count() >= 1
        && (dots || !name.contains('.'))
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.as_bytes()[0].is_ascii_alphanumeric()
                && label.as_bytes()[label.len() - 1].is_ascii_alphanumeric()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks `spec.kubernetes.version` and returns it as `MAJOR.MINOR.PATCH` (no `v`; a
/// missing patch is 0).
pub fn kube_version(input: &str) -> Result<String, String> {
    let text = input.trim();
    let bare = text.strip_prefix('v').unwrap_or(text);
    let parts: Vec<&str> = bare.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) || parts[0] != "1" {
        return Err(format!(
            "invalid Kubernetes version {input:?} in spec.kubernetes.version: write MAJOR.MINOR.PATCH, e.g. 1.36.4 (the version of the K3s release, without +k3s1)"
        ));
    }
    let patch = parts.get(2).copied().unwrap_or("0");
    Ok(format!("{}.{}.{patch}", parts[0], parts[1]))
}

/// `host[:port]/path/name` for a chart of an HTTP repository: where `import registry` puts it.
pub fn registry_path(repo: &str, name: &str) -> Result<String, String> {
    let rest = repo
        .strip_prefix("https://")
        .or_else(|| repo.strip_prefix("http://"))
        .unwrap_or(repo)
        .trim_end_matches('/');
    let path = format!("{rest}/{name}");
    check_registry_path(&path).map_err(|e| {
        format!(
            "the chart {name} of {repo} has no valid OCI repository name for `ferry import registry` ({path}: {e})"
        )
    })?;
    Ok(path)
}

fn check_registry_path(path: &str) -> Result<(), String> {
    let first = path.split('/').next().unwrap_or_default();
    if !(first.contains('.') || first.contains(':') || first == "localhost") {
        return Err(format!(
            "{first:?} is not a registry host (it needs a '.' or a port, or be localhost)"
        ));
    }
    Reference::parse(&format!("{path}:x"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks `oci://host[:port]/path/name` and returns `host[:port]/path/name` and the chart name.
pub fn oci_reference(input: &str) -> Result<(String, String), String> {
    let rest = input.trim().strip_prefix("oci://").ok_or_else(|| {
        format!(
            "chart reference {input:?} must start with oci://; for an HTTP chart repository write `repo:` and `name:`"
        )
    })?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err(format!(
            "chart reference {input:?} names a digest; give the chart's version in `version` instead"
        ));
    }
    if let Some((_, last)) = rest.split_once('/')
        && last.contains(':')
    {
        return Err(format!(
            "chart reference {input:?} has a tag; write the version in `version`, e.g. `ref: oci://{}` and `version: {}`",
            rest.rsplit_once(':').map(|(a, _)| a).unwrap_or(rest),
            rest.rsplit_once(':').map(|(_, b)| b).unwrap_or("")
        ));
    }
    if !rest.contains('/') {
        return Err(format!(
            "chart reference {input:?} needs a registry host and a path: oci://host/path/name"
        ));
    }
    check_registry_path(rest).map_err(|e| format!("invalid chart reference {input:?}: {e}"))?;
    let name = rest.rsplit('/').next().unwrap_or(rest).to_string();
    chart_name(&name)?;
    Ok((rest.to_string(), name))
}

/// A chart's bundle reference: `<key>:<version>` (see the module documentation).
pub fn bundle_reference(key: &str, version: &str) -> String {
    format!("{key}:{version}")
}

/// The parts of a bundle reference: `(key, name, version)`.
pub fn split_bundle_reference(reference: &str) -> Option<(&str, &str, &str)> {
    let (key, version) = reference.rsplit_once(':')?;
    let (_, name) = key.rsplit_once('/')?;
    if version.is_empty() || version.contains('/') || name.is_empty() {
        return None;
    }
    Some((key, name, version))
}

/// Where `import registry` pushes a chart: `host/path/name:<version with + as _>` as an image
/// reference, from its bundle reference (the site mapping is applied to it like to an image).
pub fn registry_reference(bundle_reference: &str) -> Result<Reference, String> {
    let (key, _, version) = split_bundle_reference(bundle_reference)
        .ok_or_else(|| format!("{bundle_reference:?} is not a chart reference"))?;
    let path = key
        .strip_prefix("oci://")
        .or_else(|| key.strip_prefix("https://"))
        .or_else(|| key.strip_prefix("http://"))
        .ok_or_else(|| format!("{bundle_reference:?} is not a chart reference"))?;
    // OCI tags cannot hold '+': Helm pushes 1.0.0+build as the tag 1.0.0_build.
    let tag = version.replace('+', "_");
    Reference::parse(&format!("{path}:{tag}")).map_err(|e| format!("{bundle_reference}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        assert_eq!(
            repo_url("https://helm.cilium.io/").unwrap(),
            "https://helm.cilium.io"
        );
        assert_eq!(
            repo_url("http://127.0.0.1:8080/charts/stable/").unwrap(),
            "http://127.0.0.1:8080/charts/stable"
        );
        assert!(repo_url("oci://x/y").unwrap_err().contains("ref: oci://"));
        assert!(
            repo_url("https://u:p@h/")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(
            repo_url("https://h/?token=1")
                .unwrap_err()
                .contains("query")
        );
        assert!(repo_url("not a url").is_err());
        assert_eq!(
            registry_path("https://helm.cilium.io", "cilium").unwrap(),
            "helm.cilium.io/cilium"
        );
        assert_eq!(
            registry_path("http://127.0.0.1:8080/charts", "demo").unwrap(),
            "127.0.0.1:8080/charts/demo"
        );
        assert!(registry_path("https://h.io/Charts", "demo").is_err());
    }

    #[test]
    fn oci_references() {
        assert_eq!(
            oci_reference("oci://registry-1.docker.io/bitnamicharts/redis").unwrap(),
            (
                "registry-1.docker.io/bitnamicharts/redis".to_string(),
                "redis".to_string()
            )
        );
        assert!(
            oci_reference("oci://ghcr.io/x/redis:1.0")
                .unwrap_err()
                .contains("`version: 1.0`")
        );
        assert!(
            oci_reference("ghcr.io/x/redis")
                .unwrap_err()
                .contains("oci://")
        );
        assert!(oci_reference("oci://redis").is_err());
        assert!(oci_reference("oci://charts/redis").is_err());
        assert!(oci_reference("oci://localhost:5000/redis").is_ok());
        assert!(oci_reference("oci://ghcr.io/x/redis@sha256:00").is_err());
    }

    #[test]
    fn names_and_versions() {
        assert!(chart_name("cert-manager").is_ok());
        assert!(chart_name("../x").is_err());
        assert!(chart_name("").is_err());
        assert!(chart_version("1.16.5+k3s.1").is_ok());
        assert!(chart_version("../../etc").is_err());
        assert!(chart_version("1/2").is_err());
    }

    #[test]
    fn render_settings() {
        assert!(release_name("argocd").is_ok());
        assert!(release_name("my.rel-1").is_ok());
        assert!(release_name("Argo").is_err());
        assert!(release_name(&"a".repeat(54)).is_err());
        assert!(namespace("kube-system").is_ok());
        assert!(namespace("a.b").is_err());
        assert!(namespace("-x").is_err());
        assert_eq!(kube_version("v1.36.4").unwrap(), "1.36.4");
        assert_eq!(kube_version("1.36").unwrap(), "1.36.0");
        assert!(kube_version("1.36.4+k3s1").is_err());
        assert!(kube_version("2.0.0").is_err());
    }

    #[test]
    fn bundle_references() {
        let r = bundle_reference("https://host:8443/charts/cilium", "1.16.5+b.1");
        assert_eq!(r, "https://host:8443/charts/cilium:1.16.5+b.1");
        assert_eq!(
            split_bundle_reference(&r),
            Some(("https://host:8443/charts/cilium", "cilium", "1.16.5+b.1"))
        );
        assert_eq!(
            registry_reference(&r).unwrap().to_string(),
            "host:8443/charts/cilium:1.16.5_b.1"
        );
        assert_eq!(
            registry_reference("oci://registry-1.docker.io/bitnamicharts/redis:20.6.1")
                .unwrap()
                .to_string(),
            "registry-1.docker.io/bitnamicharts/redis:20.6.1"
        );
        assert!(split_bundle_reference("nocolon").is_none());
    }
}
