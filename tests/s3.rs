//! Bundles on S3-compatible object storage: a one-node Ceph with RGW on loopback
//! (tests/common/ceph.rs), a bucket per test.

mod common;

use std::collections::HashMap;
use std::io::Read;

use common::ceph::{ACCESS_KEY, Ceph, SECRET_KEY};
use ferry::s3::{self, S3Config, S3Error, S3Location, S3Options, S3Store};

fn store(ceph: &Ceph, bucket: &str, prefix: &str, secret: &str) -> S3Store {
    let vars: HashMap<String, String> = [
        ("AWS_ENDPOINT_URL", ceph.endpoint()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("HOME", "/nonexistent"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = S3Config::resolve(&S3Options::default(), &vars).unwrap();
    let location = S3Location::parse(&format!("s3://{bucket}/{prefix}"))
        .unwrap()
        .unwrap();
    S3Store::with_config(location, config).unwrap()
}

/// Pseudo-random bytes (incompressible, reproducible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The client's operations against RGW, each checked with an independent read by curl.
#[test]
fn client_operations_against_rgw() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("client");
    let st = store(ceph, &bucket, "rel/1", SECRET_KEY);

    // put / head / get / ranged get
    s3::wait(st.put("a.txt", b"hello".to_vec())).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/a.txt"), b"hello");
    assert_eq!(s3::wait(st.head("a.txt")).unwrap(), Some(5));
    assert_eq!(s3::wait(st.head("none")).unwrap(), None);
    assert_eq!(s3::wait(st.get("a.txt")).unwrap().unwrap(), b"hello");
    assert_eq!(s3::wait(st.get("none")).unwrap(), None);
    assert_eq!(s3::wait(st.get_range("a.txt", 1, 4)).unwrap(), b"ell");

    // put-if-absent: 412 -> Exists, the object unchanged
    let e = s3::wait(st.put_if_absent("a.txt", b"other".to_vec())).unwrap_err();
    assert!(matches!(e, S3Error::Exists { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("s3://{bucket}/rel/1/a.txt")),
        "{e}"
    );
    assert_eq!(ceph.get(&bucket, "rel/1/a.txt"), b"hello");
    s3::wait(st.put_if_absent("b.txt", b"new".to_vec())).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/b.txt"), b"new");

    // multipart: three parts and a bit, read back by the chunked reader and by curl
    let big = noise(3 * s3::PART_SIZE + 12345, 7);
    let mut w = st.writer("big.bin", Some(big.len() as u64));
    for chunk in big.chunks(100_000) {
        w.write_all(chunk).unwrap();
    }
    assert!(
        !ceph.exists(&bucket, "rel/1/big.bin"),
        "no object before complete"
    );
    assert_eq!(w.complete().unwrap(), big.len() as u64);
    assert_eq!(
        common::sha256_hex(&ceph.get(&bucket, "rel/1/big.bin")),
        common::sha256_hex(&big)
    );
    let mut back = Vec::new();
    st.reader("big.bin", 0, big.len() as u64)
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == big, "the chunked reader returns the object's bytes");
    let mut tail = Vec::new();
    let from = big.len() as u64 - 9_000_000;
    st.reader("big.bin", from, big.len() as u64)
        .read_to_end(&mut tail)
        .unwrap();
    assert!(tail == big[from as usize..]);

    // an aborted (or dropped) multipart upload leaves no object and no upload behind
    let mut w = st.writer("aborted.bin", None);
    w.write_all(&big[..2 * s3::PART_SIZE + 1]).unwrap();
    drop(w);
    let mut w = st.writer("aborted2.bin", None);
    w.write_all(&big[..s3::PART_SIZE + 1]).unwrap();
    w.abort();
    assert!(!ceph.exists(&bucket, "rel/1/aborted.bin"));
    assert!(!ceph.exists(&bucket, "rel/1/aborted2.bin"));
    assert_eq!(
        ceph.uploads_in_progress(&bucket, "rel/1/"),
        Vec::<String>::new()
    );

    // copy, list, delete
    s3::wait(st.copy("a.txt", "sub/c.txt")).unwrap();
    assert_eq!(ceph.get(&bucket, "rel/1/sub/c.txt"), b"hello");
    let names: Vec<(String, u64)> = s3::wait(st.list(""))
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.txt".to_string(), 5),
            ("b.txt".to_string(), 3),
            ("big.bin".to_string(), big.len() as u64),
            ("sub/c.txt".to_string(), 5)
        ]
    );
    assert_eq!(s3::wait(st.list("sub")).unwrap().len(), 1);
    s3::wait(st.delete("sub/c.txt")).unwrap();
    s3::wait(st.delete("sub/c.txt")).unwrap();
    assert!(!ceph.exists(&bucket, "rel/1/sub/c.txt"));

    // a missing bucket is named, with the next step
    let e = s3::wait(store(ceph, "no-such-bucket-here", "", SECRET_KEY).put("x", vec![1]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-bucket-here") && e.contains("does not exist"),
        "{e}"
    );
}

/// Wrong credentials: the error names the access key id and where it came from, never the
/// secret.
#[test]
fn wrong_secret_is_named_without_the_secret() {
    let ceph = Ceph::shared();
    let bucket = ceph.bucket("creds");
    let st = store(ceph, &bucket, "", "not-the-right-secret-42");
    for e in [
        s3::wait(st.put("x", vec![1])).unwrap_err(),
        s3::wait(st.head("x")).unwrap_err(),
        s3::wait(st.get("x")).unwrap_err(),
    ] {
        let text = format!("{e} {e:?}");
        assert!(matches!(e, S3Error::Denied(_)), "{text}");
        assert!(text.contains(ACCESS_KEY), "{text}");
        assert!(text.contains("AWS_ACCESS_KEY_ID"), "{text}");
        assert!(!text.contains("not-the-right-secret-42"), "{text}");
    }
    assert!(!format!("{st:?}").contains("not-the-right-secret-42"));
}
