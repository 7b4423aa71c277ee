//! End-to-end: a release, the next one as a delta of it, `diff`, and importing the delta only
//! where its base already is.

mod common;

use common::ferry::{Env, fails, json, ok};
use common::*;

fn images(addr: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{addr}/{n}")).collect()
}

#[test]
fn delta_release_imports_only_on_top_of_its_base() {
    let source = Registry::start_plain();
    let seeded = seed_registry(&source);
    let addr = source.addr();
    let env = Env::new();
    let (key, public) = env.keys();
    let n = env.images_manifest(
        "n.yaml",
        &images(&addr, &["app/web:1", "app/base:1", "library/alpine:3.20"]),
    );
    let next = env.images_manifest(
        "n1.yaml",
        &images(&addr, &["app/web:1", "app/worker:1", "app/big:1"]),
    );
    let bundle_n = env.build_signed(&n, "n");
    let bundle_next = env.path().join("n1");
    let built = json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(&next)
            .arg("-o")
            .arg(&bundle_next)
            .arg("--key")
            .arg(&key)
            .arg("--since")
            .arg(&bundle_n),
    );
    // web and worker share base's layers: those stay with the base release.
    assert!(built["omitted_blobs"].as_u64().unwrap() >= 2, "{built}");
    for layer in &seeded.base.image().layers {
        assert!(!bundle_next.join("blobs/sha256").join(layer.hex()).exists());
    }
    let big = seeded.big_layer();
    assert!(bundle_next.join("blobs/sha256").join(big.hex()).exists());

    // verify knows what the base provides; inspect names the base.
    let verified = json(
        env.ferry()
            .args(["--output", "json", "verify"])
            .arg(&bundle_next)
            .arg("--key")
            .arg(&public),
    );
    assert!(verified["left_to_base"].as_u64().unwrap() >= 2);
    let text = ok(env.ferry().arg("inspect").arg(&bundle_next));
    assert!(text.contains("delta of base release"), "{text}");

    // diff: added, removed, unchanged, bytes.
    let diff = json(
        env.ferry()
            .args(["--output", "json", "diff"])
            .arg(&bundle_n)
            .arg(&bundle_next),
    );
    let refs = |key: &str| -> Vec<String> {
        diff[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reference"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        refs("added"),
        [format!("{addr}/app/big:1"), format!("{addr}/app/worker:1")]
    );
    assert_eq!(
        refs("removed"),
        [
            format!("{addr}/app/base:1"),
            format!("{addr}/library/alpine:3.20")
        ]
    );
    assert_eq!(diff["unchanged"], 1);
    assert!(diff["bytes_new"].as_u64().unwrap() >= big.size);
    assert!(diff["bytes_shared"].as_u64().unwrap() > 0);

    // Into an empty registry the delta is refused before any push.
    let target = Registry::start_plain();
    let err = fails(
        env.ferry()
            .args(["import", "registry"])
            .arg(&bundle_next)
            .arg("--to")
            .arg(target.addr())
            .arg("--key")
            .arg(&public),
    );
    assert!(
        err.contains("base release") && err.contains("nothing was pushed"),
        "{err}"
    );
    assert!(
        target
            .get("/v2/_catalog")
            .text()
            .contains("\"repositories\":[]")
    );

    // Base first, then the delta: every image of the new release pulls whole.
    for bundle in [&bundle_n, &bundle_next] {
        ok(env
            .ferry()
            .args(["import", "registry"])
            .arg(bundle)
            .arg("--to")
            .arg(target.addr())
            .arg("--key")
            .arg(&public));
    }
    let mapped = addr.replace(':', "_");
    for (repo, pushed) in [
        ("app/web:1", &seeded.web),
        ("app/worker:1", &seeded.worker),
        ("app/big:1", &seeded.big),
    ] {
        let reference = format!("{mapped}/{repo}");
        assert_eq!(
            digest_bytes(&skopeo_inspect_raw(&reference, &target)),
            pushed.top.digest
        );
        let out = env
            .path()
            .join(format!("pulled-{}", repo.replace([':', '/'], "-")));
        let mut copy = target.skopeo();
        copy.arg("copy")
            .args(target.skopeo_flags("src-"))
            .arg(format!("docker://{}", target.reference(&reference)))
            .arg(format!("dir:{}", out.display()));
        run(&mut copy);
    }

    // A base given as its index.json alone works too.
    let index_only = env.path().join("n-index.json");
    std::fs::copy(bundle_n.join("index.json"), &index_only).unwrap();
    let from_index = env.path().join("n1-from-index");
    let built = json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(&next)
            .arg("-o")
            .arg(&from_index)
            .arg("--since")
            .arg(&index_only),
    );
    assert!(built["omitted_blobs"].as_u64().unwrap() >= 2, "{built}");
}
