//! `spec.files`: release binaries and archives fetched over HTTP(S) (K3s, the Cilium CLI,
//! Helm), each pinned by a sha256 or by the line for it in the release's checksum file.
//!
//! ```yaml
//! spec:
//!   files:
//!     - url: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s
//!       checksums: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt
//!       mode: "0755"
//!     - url: https://get.k3s.io/
//!       sha256: <hex>
//!       name: k3s-install.sh
//!       mode: "0755"
//! ```
//!
//! A file's name on site defaults to the URL's last path segment, percent-decoded. Names come
//! back from the bundle on import, so the same [`check_file_name`] runs there again.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

use super::{Location, ManifestError, Validator};
use crate::digest::Digest;

/// Mode of files whose entry names none.
pub const DEFAULT_MODE: u32 = 0o644;
/// The checksum list `ferry import files` writes beside the files; no file may take its name.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// One release file to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The download URL, as written.
    pub url: String,
    /// What the download is checked against.
    pub pin: FilePin,
    /// The file's name on site: one safe path component.
    pub name: String,
    /// Permission bits on site (at most 0o777).
    pub mode: u32,
    /// Position of the URL in the manifest, for later errors about this file.
    pub location: Location,
}

/// How a file's content is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePin {
    /// `sha256:` in the manifest.
    Sha256(Digest),
    /// `checksums:`: the URL of a sha256sum-style file with a line for this file.
    Checksums(String),
    /// Neither: refused by `lock` unless `--allow-unpinned`.
    Unpinned,
}

/// An entry of `spec.files` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    url: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    checksums: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
}

/// Checks that `name` is a safe single path component; the error says why it is not.
pub fn check_file_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name == "." || name == ".." {
        return Err("it names a directory, not a file");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("it contains a path separator; a file name is one path component");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    if name.starts_with('.') {
        return Err("it starts with '.'; hidden names are not written");
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err("it starts or ends with white space");
    }
    if name.len() > NAME_MAX {
        return Err("it is longer than 255 bytes");
    }
    if name == SUMS_FILE {
        return Err("SHA256SUMS is the checksum list `ferry import files` writes");
    }
    Ok(())
}

/// Parses an octal permission string (`"0644"`, `"755"`); special bits are refused.
pub fn parse_mode(value: &str) -> Result<u32, String> {
    let digits = value.strip_prefix("0o").unwrap_or(value);
    let octal = !digits.is_empty()
        && digits.len() <= 4
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !octal {
        return Err(format!(
            "mode {value:?} is not an octal file mode; write it as \"0644\" or \"0755\" (quoted)"
        ));
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|e| e.to_string())?;
    if mode > 0o777 {
        return Err(format!(
            "mode {value:?} sets setuid, setgid or sticky bits, which are not carried; use at most \"0777\""
        ));
    }
    Ok(mode)
}

/// A mode as the lock and the bundle write it: four octal digits.
pub fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Parses a download URL: http or https, a host, and no credentials (the URL travels in the
/// lock and the bundle's annotations).
pub fn parse_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not supported; use https:// (or http://)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_string());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "it carries credentials, which would travel in the lock and the bundle; remove them"
                .to_string(),
        );
    }
    Ok(url)
}

/// The URL's last path segment, percent-decoded: the default file name, and the name a
/// checksum file lists the file under. `None` when it is empty or not UTF-8.
pub fn url_file_name(url: &url::Url) -> Option<String> {
    let segment = url.path_segments()?.next_back()?;
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    (!decoded.is_empty()).then(|| decoded.into_owned())
}

/// Parses a sha256 as sha256sum prints it (64 hex digits, any case) or as `sha256:<hex>`.
pub fn parse_sha256(value: &str) -> Option<Digest> {
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Digest::parse(&format!("sha256:{}", hex.to_ascii_lowercase())).ok()
}

impl Validator<'_> {
    /// Validates `spec.files`.
    pub(super) fn files(
        &self,
        entries: Vec<Spanned<RawFile>>,
    ) -> Result<Vec<FileSpec>, ManifestError> {
        let mut files = Vec::with_capacity(entries.len());
        let mut names: HashMap<String, Location> = HashMap::new();
        let mut urls: HashMap<String, Location> = HashMap::new();
        for entry in entries {
            let at = self.loc(&entry.referenced);
            let raw = entry.value;
            let url_value = self.required(
                raw.url,
                at,
                "url",
                "add the download URL, e.g. `url: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s`"
                    .to_owned(),
            )?;
            let location = self.loc(&url_value.referenced);
            let written = url_value.value.trim().to_owned();
            let url = parse_url(&written).map_err(|reason| {
                self.file_error(location, format!("invalid url {written:?}: {reason}"))
            })?;

            let pin = match (raw.sha256, raw.checksums) {
                (Some(_), Some(checksums)) => {
                    return Err(self.file_error(
                        self.loc(&checksums.referenced),
                        "give either sha256 or checksums, not both".to_owned(),
                    ));
                }
                (Some(sha256), None) => match parse_sha256(sha256.value.trim()) {
                    Some(digest) => FilePin::Sha256(digest),
                    None => {
                        return Err(self.file_error(
                            self.loc(&sha256.referenced),
                            format!(
                                "invalid sha256 {:?}: write the 64 hexadecimal digits sha256sum prints",
                                sha256.value
                            ),
                        ));
                    }
                },
                (None, Some(checksums)) => {
                    let value = checksums.value.trim().to_owned();
                    parse_url(&value).map_err(|reason| {
                        self.file_error(
                            self.loc(&checksums.referenced),
                            format!("invalid checksums url {value:?}: {reason}"),
                        )
                    })?;
                    FilePin::Checksums(value)
                }
                (None, None) => FilePin::Unpinned,
            };

            let (name, name_location) = match raw.name {
                Some(name) => {
                    let name_location = self.loc(&name.referenced);
                    if let Err(reason) = check_file_name(&name.value) {
                        return Err(self.file_error(
                            name_location,
                            format!(
                                "invalid name {:?}: {reason}; give a plain file name such as `name: k3s`",
                                name.value
                            ),
                        ));
                    }
                    (name.value, name_location)
                }
                None => {
                    let derived = url_file_name(&url).unwrap_or_default();
                    if let Err(reason) = check_file_name(&derived) {
                        return Err(self.file_error(
                            location,
                            format!(
                                "the URL's last segment {derived:?} cannot be the file's name ({reason}); add `name:` with the name it gets on site"
                            ),
                        ));
                    }
                    (derived, location)
                }
            };

            let mode = match raw.mode {
                Some(mode) => parse_mode(mode.value.trim())
                    .map_err(|reason| self.file_error(self.loc(&mode.referenced), reason))?,
                None => DEFAULT_MODE,
            };

            if let Some(first) = urls.get(&written) {
                return Err(self.file_error(
                    location,
                    format!(
                        "duplicate file url {written:?}, first listed at line {}; remove one entry",
                        first.line
                    ),
                ));
            }
            urls.insert(written.clone(), location);
            if let Some(first) = names.get(&name) {
                return Err(self.file_error(
                    name_location,
                    format!(
                        "duplicate file name {name:?}, first used at line {}; give one of them another `name:`",
                        first.line
                    ),
                ));
            }
            names.insert(name.clone(), name_location);

            files.push(FileSpec {
                url: written,
                pin,
                name,
                mode,
                location,
            });
        }
        Ok(files)
    }

    fn file_error(&self, location: Location, message: String) -> ManifestError {
        ManifestError::InvalidFile {
            path: self.path.to_owned(),
            location,
            message,
        }
    }
}

/// One release file, resolved: what the bundle will hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedFile {
    /// The download URL, as in the manifest.
    pub url: String,
    /// The name on site.
    #[serde(deserialize_with = "file_name")]
    pub name: String,
    /// Permission bits, four octal digits.
    #[serde(deserialize_with = "mode")]
    pub mode: String,
    /// Size in bytes.
    pub size: u64,
    /// The content's sha256, 64 lowercase hex digits.
    #[serde(deserialize_with = "sha256_hex")]
    pub sha256: String,
    /// The checksum file the sha256 came from, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<String>,
    /// True when nothing pinned the file: the sha256 is the one seen when locking.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpinned: bool,
}

impl LockedFile {
    /// The content digest.
    pub fn digest(&self) -> Digest {
        Digest::parse(&format!("sha256:{}", self.sha256)).expect("checked when read")
    }

    /// The permission bits.
    pub fn mode_bits(&self) -> u32 {
        parse_mode(&self.mode).unwrap_or(DEFAULT_MODE)
    }

    /// Whether this entry still answers what the manifest asks for.
    pub fn matches(&self, spec: &FileSpec) -> bool {
        self.url == spec.url
            && self.name == spec.name
            && self.mode == format_mode(spec.mode)
            && self.pin_matches(&spec.pin)
    }

    fn pin_matches(&self, pin: &FilePin) -> bool {
        match pin {
            FilePin::Sha256(digest) => {
                !self.unpinned && self.checksums.is_none() && self.digest() == *digest
            }
            FilePin::Checksums(url) => !self.unpinned && self.checksums.as_deref() == Some(url),
            FilePin::Unpinned => self.unpinned,
        }
    }

    /// Where the sha256 came from, for messages.
    pub fn pin_source(&self) -> String {
        match (&self.checksums, self.unpinned) {
            (_, true) => "unpinned".to_string(),
            (Some(url), false) => format!("checksums {url}"),
            (None, false) => "sha256 in the manifest".to_string(),
        }
    }
}

fn describe_pin(pin: &FilePin) -> String {
    match pin {
        FilePin::Sha256(d) => format!("sha256 {}", d.hex()),
        FilePin::Checksums(url) => format!("checksums {url}"),
        FilePin::Unpinned => "unpinned".to_string(),
    }
}

/// What differs between the locked files and the manifest's, for `Lock::differences`.
pub fn lock_differences(locked: &[LockedFile], specs: &[FileSpec]) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        let Some(l) = locked.iter().find(|l| l.url == spec.url) else {
            out.push(format!("file {} is not in the lock", spec.url));
            continue;
        };
        if l.name != spec.name {
            out.push(format!(
                "file {} is named {:?} in the lock but {:?} in the manifest",
                spec.url, l.name, spec.name
            ));
        }
        if l.mode != format_mode(spec.mode) {
            out.push(format!(
                "file {} has mode {} in the lock but {} in the manifest",
                spec.url,
                l.mode,
                format_mode(spec.mode)
            ));
        }
        if !l.pin_matches(&spec.pin) {
            let in_lock = match (&l.checksums, l.unpinned) {
                (_, true) => "unpinned".to_string(),
                (Some(url), false) => format!("checksums {url}"),
                (None, false) => format!("sha256 {}", l.sha256),
            };
            out.push(format!(
                "file {} is pinned by {in_lock} in the lock but by {} in the manifest",
                spec.url,
                describe_pin(&spec.pin)
            ));
        }
    }
    for l in locked {
        if !specs.iter().any(|s| s.url == l.url) {
            out.push(format!(
                "file {} is in the lock but no longer in the manifest",
                l.url
            ));
        }
    }
    out
}

fn file_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    check_file_name(&name)
        .map_err(|reason| serde::de::Error::custom(format!("file name {name:?}: {reason}")))?;
    Ok(name)
}

fn mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    let bits = parse_mode(&value).map_err(serde::de::Error::custom)?;
    Ok(format_mode(bits))
}

fn sha256_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "sha256 {value:?} is not 64 lowercase hexadecimal digits"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use insta::assert_snapshot;

    use super::*;
    use crate::manifest::Manifest;

    /// Lines 1 to 4 of every test manifest, so the first entry is on line 6.
    const HEAD: &str = "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: platform, version: \"1\"}\nspec:\n  files:\n";
    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(entries: &str) -> Result<Vec<FileSpec>, ManifestError> {
        Manifest::parse(&format!("{HEAD}{entries}"), Path::new("platform.yaml"))
            .map(|m| m.spec.files)
    }

    fn err(entries: &str) -> String {
        match parse(entries) {
            Ok(files) => panic!("expected an error, got {files:#?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_entries_with_defaults() {
        let files = parse(&format!(
            "    - url: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s\n      checksums: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt\n      mode: \"0755\"\n    - url: https://get.k3s.io/\n      sha256: {}\n      name: k3s-install.sh\n      mode: 0755\n    - url: https://example.com/a%20b.tar.gz?download=1\n",
            HEX.to_uppercase()
        ))
        .unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].name, "k3s");
        assert_eq!(files[0].mode, 0o755);
        assert_eq!(
            files[0].pin,
            FilePin::Checksums(
                "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt"
                    .into()
            )
        );
        assert_eq!(
            files[0].location,
            Location {
                line: 6,
                column: 12
            }
        );
        assert_eq!(files[1].name, "k3s-install.sh");
        // Unquoted, YAML would call it a number: it is read as written.
        assert_eq!(files[1].mode, 0o755);
        assert_eq!(
            files[1].pin,
            FilePin::Sha256(Digest::parse(&format!("sha256:{HEX}")).unwrap())
        );
        assert_eq!(files[2].name, "a b.tar.gz");
        assert_eq!(files[2].mode, 0o644);
        assert_eq!(files[2].pin, FilePin::Unpinned);
    }

    #[test]
    fn hostile_names_are_refused() {
        let e = err("    - url: https://example.com/k3s\n      name: ../x\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: invalid name "../x": it contains a path separator; a file name is one path component; give a plain file name such as `name: k3s`"#);
        let e = err("    - url: https://example.com/k3s\n      name: /etc/x\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: invalid name "/etc/x": it contains a path separator; a file name is one path component; give a plain file name such as `name: k3s`"#);
        let e = err("    - url: https://example.com/k3s\n      name: ..\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: invalid name "..": it names a directory, not a file; give a plain file name such as `name: k3s`"#);
        let e = err("    - url: https://example.com/k3s\n      name: SHA256SUMS\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: invalid name "SHA256SUMS": SHA256SUMS is the checksum list `ferry import files` writes; give a plain file name such as `name: k3s`"#);
        // The default name is checked as well, after percent-decoding.
        let e = err("    - url: https://example.com/a/..%2F..%2Fetc%2Fpasswd\n");
        assert_snapshot!(e, @r#"platform.yaml:6:12: the URL's last segment "../../etc/passwd" cannot be the file's name (it contains a path separator; a file name is one path component); add `name:` with the name it gets on site"#);
        let e = err("    - url: https://get.k3s.io/\n      sha256: 00\n");
        assert_snapshot!(e, @r#"platform.yaml:7:15: invalid sha256 "00": write the 64 hexadecimal digits sha256sum prints"#);
        let e = err("    - url: https://get.k3s.io/\n");
        assert_snapshot!(e, @r#"platform.yaml:6:12: the URL's last segment "" cannot be the file's name (it is empty); add `name:` with the name it gets on site"#);
    }

    #[test]
    fn bad_values_and_unknown_fields() {
        let e = err("    - url: https://example.com/k3s\n      mode: \"0855\"\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: mode "0855" is not an octal file mode; write it as "0644" or "0755" (quoted)"#);
        let e = err("    - url: https://example.com/k3s\n      mode: \"4755\"\n");
        assert_snapshot!(e, @r#"platform.yaml:7:13: mode "4755" sets setuid, setgid or sticky bits, which are not carried; use at most "0777""#);
        let e = err("    - url: https://example.com/k3s\n      sha265: abc\n");
        assert_snapshot!(e, @r#"platform.yaml:7:7: unknown field "sha265"; did you mean "sha256"? (allowed here: url, sha256, checksums, name, mode)"#);
        let e = err("    - url: ftp://example.com/k3s\n");
        assert_snapshot!(e, @r#"platform.yaml:6:12: invalid url "ftp://example.com/k3s": scheme "ftp" is not supported; use https:// (or http://)"#);
        let e = err("    - url: https://user:secret@example.com/k3s\n");
        assert_snapshot!(e, @r#"platform.yaml:6:12: invalid url "https://user:secret@example.com/k3s": it carries credentials, which would travel in the lock and the bundle; remove them"#);
        let e = err(&format!(
            "    - url: https://example.com/k3s\n      sha256: {HEX}\n      checksums: https://example.com/sums\n"
        ));
        assert_snapshot!(e, @"platform.yaml:8:18: give either sha256 or checksums, not both");
        let e = err("    - url: https://example.com/k3s\n      checksums: sums.txt\n");
        assert_snapshot!(e, @r#"platform.yaml:7:18: invalid checksums url "sums.txt": relative URL without a base"#);
        let e = err("    - name: k3s\n");
        assert_snapshot!(e, @"platform.yaml:6:7: url is missing; add the download URL, e.g. `url: https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s`");
        let e = err("    - https://example.com/k3s\n");
        assert_snapshot!(e, @"platform.yaml:6:7: expected a mapping (key: value pairs) here");
    }

    #[test]
    fn duplicates() {
        let e = err("    - url: https://example.com/a/k3s\n    - url: https://example.com/b/k3s\n");
        assert_snapshot!(e, @r#"platform.yaml:7:12: duplicate file name "k3s", first used at line 6; give one of them another `name:`"#);
        let e = err(
            "    - url: https://example.com/k3s\n    - url: https://example.com/k3s\n      name: other\n",
        );
        assert_snapshot!(e, @r#"platform.yaml:7:12: duplicate file url "https://example.com/k3s", first listed at line 6; remove one entry"#);
    }

    #[test]
    fn names_and_modes() {
        for good in ["k3s", "k3s-airgap-images-amd64.tar.zst", "a b", "-x", "ü"] {
            assert_eq!(check_file_name(good), Ok(()), "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "/etc/x", "a\\b", "a\nb", ".hidden", " x", "x ",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"x".repeat(256)).is_err());
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert_eq!(parse_mode("0o700"), Ok(0o700));
        assert!(parse_mode("").is_err());
        assert!(parse_mode("rwx").is_err());
        assert!(parse_mode("00755").is_err());
        assert_eq!(format_mode(0o755), "0755");
        assert_eq!(format_mode(0o44), "0044");
    }

    #[test]
    fn lock_entries_check_their_values() {
        let good = format!(
            r#"{{"url":"https://x/k3s","name":"k3s","mode":"755","size":3,"sha256":"{HEX}"}}"#
        );
        let file: LockedFile = serde_json::from_str(&good).unwrap();
        assert_eq!(file.mode, "0755");
        assert_eq!(file.digest().hex(), HEX);
        for bad in [
            good.replace("\"k3s\",\"mode", "\"../k3s\",\"mode"),
            good.replace("755", "4755"),
            good.replace(HEX, &HEX.to_uppercase()),
        ] {
            assert!(serde_json::from_str::<LockedFile>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn differences_name_what_changed() {
        let spec = parse(&format!(
            "    - url: https://x/k3s\n      sha256: {HEX}\n      mode: \"0755\"\n"
        ))
        .unwrap();
        let locked = LockedFile {
            url: "https://x/k3s".into(),
            name: "k3s".into(),
            mode: "0755".into(),
            size: 1,
            sha256: HEX.into(),
            checksums: None,
            unpinned: false,
        };
        assert!(lock_differences(std::slice::from_ref(&locked), &spec).is_empty());
        let mut other = locked.clone();
        other.mode = "0644".into();
        other.unpinned = true;
        assert_eq!(
            lock_differences(&[other], &spec),
            [
                "file https://x/k3s has mode 0644 in the lock but 0755 in the manifest",
                &format!(
                    "file https://x/k3s is pinned by unpinned in the lock but by sha256 {HEX} in the manifest"
                )
            ]
        );
        assert_eq!(
            lock_differences(&[], &spec),
            ["file https://x/k3s is not in the lock"]
        );
        assert_eq!(
            lock_differences(&[locked], &[]),
            ["file https://x/k3s is in the lock but no longer in the manifest"]
        );
    }
}
