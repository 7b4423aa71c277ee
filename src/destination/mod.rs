//! Destinations: where an import puts a bundle's content (containers/image's word). Nothing outside this module knows Harbor.

pub mod apt;
pub mod chart_repo;
pub mod files;
pub mod git;
pub mod gpu_operator;
pub mod harbor;
pub mod referrers;
pub mod registry;
pub mod site_config;
pub mod trees;

/// `url` without its trailing `/` when it is an absolute http(s) URL with a host: the form a
/// target's served-under URL (chart repository, apt mirror, Harbor API) must have.
pub fn absolute_http_url(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .map(|_| url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::absolute_http_url;

    #[test]
    fn absolute_http_urls() {
        assert_eq!(
            absolute_http_url("https://charts.site.lan/repo/").as_deref(),
            Some("https://charts.site.lan/repo")
        );
        assert_eq!(
            absolute_http_url("http://10.0.0.1:8080").as_deref(),
            Some("http://10.0.0.1:8080")
        );
        for bad in [
            "/srv/charts",
            "charts.site.lan",
            "file:///srv/charts",
            "ftp://h/x",
        ] {
            assert_eq!(absolute_http_url(bad), None, "{bad}");
        }
    }
}
