//! The ferry binary as it travels to site: it runs on Ubuntu 22.04 (no glibc symbol newer
//! than 2.35), names its commit in `--version`, and brings its shell completions and man pages.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The newest glibc the binary may need: Ubuntu 22.04's.
const MAX_GLIBC: (u32, u32) = (2, 35);

fn ferry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.env("NO_COLOR", "1");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("cannot run ferry");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The symbol versions a 64-bit little-endian ELF file needs from its shared libraries
/// (`.gnu.version_r`: Verneed entries, each with Vernaux entries naming a version), as
/// (library, version) pairs.
fn needed_versions(elf: &[u8]) -> BTreeSet<(String, String)> {
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(elf[5], 1, "not a little-endian ELF file");
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    // Section header fields: type, offset, size, link (the string table), info (the count).
    let section = |i: usize| {
        let at = shoff + i * shentsize;
        (
            u32_at(at + 4),
            u64_at(at + 0x18),
            u64_at(at + 0x20),
            u32_at(at + 0x28),
            u32_at(at + 0x2c),
        )
    };
    const SHT_GNU_VERNEED: usize = 0x6fff_fffe;
    let (_, offset, _, link, count) = (0..shnum)
        .map(section)
        .find(|s| s.0 == SHT_GNU_VERNEED)
        .expect("no .gnu.version_r section: is the binary statically linked?");
    let strtab = section(link).1;
    let string = |at: usize| {
        let start = strtab + at;
        let end = start + elf[start..].iter().position(|b| *b == 0).unwrap();
        String::from_utf8_lossy(&elf[start..end]).into_owned()
    };
    let mut out = BTreeSet::new();
    let mut need = offset;
    for _ in 0..count {
        // Verneed: version u16, cnt u16, file u32, aux u32, next u32.
        let (cnt, file, aux, next) = (
            u16_at(need + 2),
            u32_at(need + 4),
            u32_at(need + 8),
            u32_at(need + 12),
        );
        let library = string(file);
        let mut vernaux = need + aux;
        for _ in 0..cnt {
            // Vernaux: hash u32, flags u16, other u16, name u32, next u32.
            out.insert((library.clone(), string(u32_at(vernaux + 8))));
            vernaux += u32_at(vernaux + 12);
        }
        if next == 0 {
            break;
        }
        need += next;
    }
    out
}

/// `GLIBC_2.34` as (2, 34).
fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let (major, minor) = name.strip_prefix("GLIBC_")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[test]
fn the_binary_runs_on_ubuntu_22_04() {
    let path = Path::new(env!("CARGO_BIN_EXE_ferry"));
    let elf = std::fs::read(path).unwrap();
    let needed = needed_versions(&elf);
    let glibc: BTreeSet<(u32, u32)> = needed
        .iter()
        .filter_map(|(_, v)| glibc_version(v))
        .collect();
    let newest = *glibc.iter().max().expect("no GLIBC_ symbol versions found");
    eprintln!(
        "{} needs glibc {}.{} at most ({} versions: {:?})",
        path.display(),
        newest.0,
        newest.1,
        needed.len(),
        needed
    );
    assert!(
        newest <= MAX_GLIBC,
        "{} needs GLIBC_{}.{}, newer than Ubuntu 22.04's {}.{}: it would not start there. The symbols: {:?}",
        path.display(),
        newest.0,
        newest.1,
        MAX_GLIBC.0,
        MAX_GLIBC.1,
        needed
    );
    // The same reading as binutils', where objdump is installed.
    if let Ok(out) = Command::new("objdump").arg("-T").arg(path).output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let from_objdump = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(glibc_version)
            .max()
            .expect("objdump -T lists no GLIBC_ version");
        assert_eq!(from_objdump, newest, "objdump -T says otherwise");
    }
}

#[test]
fn version_names_the_commit() {
    let version = stdout_of(ferry().arg("--version"));
    let version = version.trim();
    let commit = version
        .strip_prefix(concat!("ferry ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no commit in {version:?}"));
    // Built from this repository's git work tree: the commit is HEAD's.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(out) if out.status.success() => {
            let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
            // A commit made after this binary was built moves HEAD on: then only the form is
            // checked.
            assert!(
                hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{version}"
            );
            if hash != head {
                eprintln!("ferry was built from {hash}, HEAD is now {head}");
            }
        }
        _ => assert!(
            commit == "unknown commit" || commit.len() >= 12,
            "{version}"
        ),
    }
    // Subcommands say the same.
    assert_eq!(
        stdout_of(ferry().args(["pack", "--version"])).trim(),
        version.replacen("ferry ", "ferry-pack ", 1)
    );
}

#[test]
fn bash_completions_load() {
    let ferry_bin = env!("CARGO_BIN_EXE_ferry");
    let out = stdout_of(Command::new("bash").arg("-c").arg(format!(
        "source <('{ferry_bin}' completions bash) && complete -p ferry"
    )));
    assert!(out.contains("-F _ferry ferry"), "{out}");
    // Completing `ferry pa` offers `pack`.
    let out = stdout_of(Command::new("bash").arg("-c").arg(format!(
        "source <('{ferry_bin}' completions bash) && COMP_WORDS=(ferry pa) COMP_CWORD=1 && _ferry ferry pa ferry && echo \"${{COMPREPLY[@]}}\""
    )));
    assert!(out.split_whitespace().any(|w| w == "pack"), "{out}");
    assert!(stdout_of(ferry().args(["completions", "zsh"])).starts_with("#compdef ferry"));
    assert!(stdout_of(ferry().args(["completions", "fish"])).contains("complete -c ferry"));
    let out = ferry().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values: bash"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_pages_one_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man/man1");
    let report = stdout_of(ferry().args(["--output", "json", "man", "--out"]).arg(&out));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(report["pages"].as_array().unwrap().len(), names.len());
    insta::assert_snapshot!(names.join("\n"), @r"
    ferry-build.1
    ferry-check.1
    ferry-completions.1
    ferry-diff.1
    ferry-import-apt.1
    ferry-import-charts.1
    ferry-import-files.1
    ferry-import-git.1
    ferry-import-registry.1
    ferry-import-trees.1
    ferry-import.1
    ferry-inspect.1
    ferry-install.1
    ferry-key-generate.1
    ferry-key.1
    ferry-lock.1
    ferry-login.1
    ferry-man.1
    ferry-pack.1
    ferry-registries-config.1
    ferry-sbom.1
    ferry-serve.1
    ferry-sign.1
    ferry-unpack.1
    ferry-verify.1
    ferry.1
    ");
    let pack = std::fs::read_to_string(out.join("ferry-pack.1")).unwrap();
    assert!(pack.starts_with(".ie"), "{pack}");
    assert!(pack.contains(".TH ferry-pack 1"), "{pack}");
    assert!(pack.contains("ferry\\-binary"), "{pack}");
}
