//! The fuzz targets' committed inputs, on stable and in every test run: each seed
//! (`fuzz/seeds/<target>/`) and each crash the fuzzer found, kept as a regression
//! (`fuzz/regressions/<target>/`), goes through the same function the fuzz target calls
//! (`ferry::fuzzing`); none may panic. `scripts/fuzz.sh` does the fuzzing itself.

use std::path::Path;

use ferry::fuzzing::TARGETS;

/// The files in `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_seed_and_kept_crash_goes_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let targets: Vec<&str> = inputs(&root.join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .map(|n| {
            TARGETS
                .iter()
                .find(|(t, _)| *t == n)
                .map(|(t, _)| *t)
                .unwrap_or_else(|| {
                    panic!("fuzz/fuzz_targets/{n}.rs has no ferry::fuzzing::TARGETS entry")
                })
        })
        .collect();
    assert_eq!(
        targets.len(),
        TARGETS.len(),
        "a fuzzing::TARGETS entry has no fuzz target"
    );
    for kind in ["seeds", "regressions"] {
        for dir in inputs(&root.join(kind)) {
            let name = dir.file_name().unwrap().to_str().unwrap();
            assert!(
                targets.contains(&name),
                "fuzz/{kind}/{name}: no such fuzz target"
            );
        }
    }
    for (name, run) in TARGETS {
        let seeds = inputs(&root.join("seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ is empty");
        for input in seeds
            .iter()
            .chain(&inputs(&root.join("regressions").join(name)))
        {
            let bytes = std::fs::read(input).unwrap();
            if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                panic!("{name} panicked on {}", input.display());
            }
        }
    }
}
