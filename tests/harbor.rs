//! ferry's Harbor API client against Harbor's own API description, served by Stoplight Prism as
//! a validating mock (tests/common/prism.rs): every request ferry sends must pass the spec.
//!
//! Prism answers the lowest 2xx by default, so `HEAD /projects` says "exists"; the fault proxy
//! in front adds `Prefer: code=N` per method to pick other answers (404 "missing", 409, 401,
//! 500), and answers 403 itself, since the spec defines no 403 for `POST /projects` although
//! Harbor sends one when project creation is limited to administrators.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine;
use common::faultproxy::{AddHeader, CannedAnswer, FaultProxy, Faults};
use common::prism::Prism;
use ferry::auth::Credentials;
use ferry::destination::harbor::{HarborClient, HarborError, ProjectOutcome, ProjectSettings};

const USER: &str = "importer";
const PASSWORD: &str = "s3cret-Pa55word";
/// The message of the spec's `Error` example, which Prism sends as Harbor's message.
const PRISM_MESSAGE: &str = "NOT_FOUND: artifact library/hello-world:latest not found";
const ATTEMPTS: u32 = 3;

fn client(api_base: &str) -> HarborClient {
    HarborClient::new(
        api_base,
        Some(Credentials {
            username: USER.to_string(),
            password: PASSWORD.to_string(),
        }),
        &[],
    )
    .expect("client")
    .with_retries(ATTEMPTS, Duration::from_millis(20))
}

/// A proxy in front of Prism that makes `HEAD /projects` answer 404 (project missing) and adds
/// `Prefer: code=N` to the POST when `post_code` is given.
fn missing_project_proxy(prism: &Prism, post_code: Option<u16>) -> FaultProxy {
    let mut add = vec![AddHeader::on("HEAD", "Prefer", "code=404")];
    if let Some(code) = post_code {
        add.push(AddHeader::on("POST", "Prefer", &format!("code={code}")));
    }
    FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: add,
            ..Default::default()
        },
    )
}

fn settings() -> ProjectSettings {
    ProjectSettings {
        public: false,
        content_trust_cosign: true,
    }
}

/// Neither the error's text nor its Debug form may carry the password.
fn assert_no_secret(err: &HarborError) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn creates_a_missing_project_with_a_request_the_spec_accepts() {
    let prism = Prism::start_harbor();
    let proxy = missing_project_proxy(&prism, None);
    let harbor = client(&prism.api_base_via(proxy.addr()));

    let outcome = harbor.ensure_project("quay.io", &settings()).await.unwrap();
    assert_eq!(outcome, ProjectOutcome::Created);
    prism.assert_no_request_violations();
    assert_eq!(
        prism.requests(),
        ["head /api/v2.0/projects", "post /api/v2.0/projects"]
    );

    let heads = proxy.request_heads();
    assert_eq!(heads.len(), 2, "{heads:#?}");
    assert!(
        heads[0].starts_with("HEAD /api/v2.0/projects?project_name=quay.io HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with("POST /api/v2.0/projects HTTP/1.1\r\n"),
        "{}",
        heads[1]
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    for head in &heads {
        assert_eq!(
            header(head, "authorization"),
            Some(basic.as_str()),
            "{head}"
        );
        assert_eq!(header(head, "accept"), Some("application/json"), "{head}");
        // With a session cookie Harbor would demand a CSRF token.
        assert_eq!(header(head, "cookie"), None, "{head}");
    }
    assert_eq!(
        header(&heads[1], "content-type"),
        Some("application/json"),
        "{}",
        heads[1]
    );

    // Several projects, in name order, each checked and created.
    let names: BTreeSet<String> = ["quay.io", "docker.io", "localhost_5000"]
        .into_iter()
        .map(String::from)
        .collect();
    let outcomes = harbor.ensure_projects(&names, &settings()).await.unwrap();
    assert_eq!(
        outcomes,
        [
            ("docker.io".to_string(), ProjectOutcome::Created),
            ("localhost_5000".to_string(), ProjectOutcome::Created),
            ("quay.io".to_string(), ProjectOutcome::Created),
        ]
    );
    assert_eq!(prism.requests().len(), 8);
    prism.assert_no_request_violations();
}

#[tokio::test]
async fn an_existing_project_is_left_alone() {
    let prism = Prism::start_harbor();

    // HEAD answers 200 (Prism's default): no POST follows.
    let outcome = client(&prism.api_base())
        .ensure_project("docker.io", &ProjectSettings::default())
        .await
        .unwrap();
    assert_eq!(outcome, ProjectOutcome::Existed);
    assert_eq!(prism.requests(), ["head /api/v2.0/projects"]);

    // Missing at HEAD, then 409 at POST: another importer created it in between.
    let proxy = missing_project_proxy(&prism, Some(409));
    let outcome = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("docker.io", &ProjectSettings::default())
        .await
        .unwrap();
    assert_eq!(outcome, ProjectOutcome::Existed);
    assert_eq!(
        proxy.requests(),
        2,
        "409 is an answer, not a reason to retry"
    );
    prism.assert_no_request_violations();
}

#[tokio::test]
async fn harbor_errors_carry_harbors_message_and_say_what_to_do() {
    let prism = Prism::start_harbor();

    // 401: the credentials.
    let proxy = missing_project_proxy(&prism, Some(401));
    let err = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HarborError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(text.contains(PRISM_MESSAGE), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(
        text.contains(&format!("`ferry login {}`", proxy.addr())),
        "{text}"
    );
    assert!(text.contains("creating project \"quay.io\""), "{text}");
    assert_eq!(proxy.requests(), 2, "401 is not retried");
    assert_no_secret(&err);

    // 500: retried, then Harbor's message and "retry later".
    let proxy = missing_project_proxy(&prism, Some(500));
    let err = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            HarborError::Server {
                status: 500,
                attempts: ATTEMPTS,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains(PRISM_MESSAGE), "{text}");
    assert!(text.contains("Retry the import later"), "{text}");
    assert_eq!(proxy.requests(), 1 + ATTEMPTS as usize);
    assert_no_secret(&err);

    // 500 on the HEAD: the error says what ferry was doing.
    let proxy = FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: vec![AddHeader::on("HEAD", "Prefer", "code=500")],
            ..Default::default()
        },
    );
    let err = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HarborError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("checking whether project \"quay.io\" exists"),
        "{err}"
    );

    // 403: the spec defines none for POST /projects, so the proxy answers as Harbor does.
    let proxy = FaultProxy::start(
        &prism.addr(),
        Faults {
            add_request_headers: vec![AddHeader::on("HEAD", "Prefer", "code=404")],
            answer: Some(CannedAnswer {
                method: Some("POST".to_string()),
                status: 403,
                reason: "Forbidden".to_string(),
                body: r#"{"errors":[{"code":"FORBIDDEN","message":"Only system admin can create project"}]}"#
                    .to_string(),
            }),
            ..Default::default()
        },
    );
    let err = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HarborError::Forbidden { status: 403, .. }),
        "{err:?}"
    );
    assert!(
        text.contains("FORBIDDEN: Only system admin can create project"),
        "{text}"
    );
    assert!(text.contains("right to create projects"), "{text}");
    assert!(
        text.contains("create project \"quay.io\" in Harbor first"),
        "{text}"
    );
    assert_eq!(proxy.requests(), 2, "403 is not retried");
    assert_no_secret(&err);

    prism.assert_no_request_violations();
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let prism = Prism::start_harbor();
    // Every 2nd request gets 503: the POST fails once, its retry passes.
    let proxy = FaultProxy::start(
        &prism.addr(),
        Faults {
            fail_every: Some(2),
            add_request_headers: vec![AddHeader::on("HEAD", "Prefer", "code=404")],
            ..Default::default()
        },
    );
    let outcome = client(&prism.api_base_via(proxy.addr()))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap();
    assert_eq!(outcome, ProjectOutcome::Created);
    assert_eq!(proxy.injected(), 1);
    assert_eq!(proxy.requests(), 3);
    prism.assert_no_request_violations();
}

#[tokio::test]
async fn invalid_project_names_are_refused_before_any_request() {
    // Nothing behind the proxy: any request would show in its count.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = dead.local_addr().unwrap().to_string();
    drop(dead);
    let proxy = FaultProxy::start(&upstream, Faults::default());
    let harbor = client(&format!("http://{}/api/v2.0", proxy.addr()));

    let err = harbor
        .ensure_project("Quay.io", &settings())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HarborError::InvalidProjectName { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("\"Quay.io\""), "{text}");
    assert!(text.contains("upper-case"), "{text}");
    assert!(text.contains("--to HOST/PREFIX"), "{text}");

    // One bad name stops the whole set before the first (valid) project is touched.
    let names: BTreeSet<String> = ["a-valid.project", "localhost:5000"]
        .into_iter()
        .map(String::from)
        .collect();
    let err = harbor
        .ensure_projects(&names, &settings())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"localhost:5000\""), "{err}");
    assert!(err.to_string().contains("':'"), "{err}");
    assert_eq!(proxy.requests(), 0);
}

#[tokio::test]
async fn a_dead_api_gives_a_clear_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let api_base = format!("http://{addr}/api/v2.0");

    let started = Instant::now();
    let err = client(&api_base)
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            HarborError::Unreachable {
                attempts: ATTEMPTS,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        text.starts_with(&format!("cannot reach Harbor at {api_base}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert!(text.contains("that Harbor is running"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_no_secret(&err);
}

/// The harness itself: Prism does reject requests that break the spec, and the log check sees
/// it, so the "no violations" assertions above mean something.
#[tokio::test]
async fn prism_rejects_requests_that_break_the_spec() {
    let prism = Prism::start_harbor();
    let http = reqwest::Client::new();

    // Metadata values are strings in Harbor; a JSON boolean breaks the spec.
    let response = http
        .post(format!("{}/projects", prism.api_base()))
        .header("Content-Type", "application/json")
        .body(r#"{"project_name":"quay.io","metadata":{"public":false}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let violations = response
        .headers()
        .get("sl-violations")
        .expect("sl-violations header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        violations.contains("metadata.public must be string"),
        "{violations}"
    );

    // HEAD without its required query parameter.
    let response = http
        .head(format!("{}/projects", prism.api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let found = prism.request_violations();
    assert!(
        found
            .iter()
            .any(|l| l.contains("Violation: request.body.metadata.public")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|l| l.contains("project_name")),
        "{found:#?}"
    );
    let check = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prism.assert_no_request_violations()
    }));
    assert!(check.is_err(), "the violation check must fail here");
}

/// TLS with a private CA (`--ca-file`), against a plain registry that is not Harbor: the
/// handshake passes with the CA, fails without it, and the 404s say to check the API URL.
#[tokio::test]
async fn https_with_a_private_ca_and_a_server_that_is_not_harbor() {
    let registry = common::Registry::start_tls();
    let api_base = format!("https://{}/api/v2.0", registry.addr());

    let harbor = HarborClient::new(&api_base, None, &[registry.ca_cert_path()])
        .unwrap()
        .with_retries(1, Duration::from_millis(20));
    let err = harbor
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HarborError::Unexpected { status: 404, .. }),
        "{err:?}"
    );
    assert!(text.contains("creating project \"quay.io\""), "{text}");
    assert!(
        text.contains(&format!("Is {api_base} Harbor's API")),
        "{text}"
    );

    let err = HarborClient::new(&api_base, None, &[])
        .unwrap()
        .with_retries(1, Duration::from_millis(20))
        .ensure_project("quay.io", &settings())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HarborError::Unreachable { .. }), "{err:?}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(text.contains("--ca-file"), "{text}");
}

#[tokio::test]
async fn turns_on_cosign_content_trust_for_an_existing_project_by_name() {
    let prism = Prism::start_harbor();
    let proxy = FaultProxy::start(&prism.addr(), Faults::default());
    let harbor = client(&prism.api_base_via(proxy.addr()));

    harbor.enable_content_trust_cosign("quay.io").await.unwrap();
    prism.assert_no_request_violations();
    assert_eq!(
        prism.requests(),
        ["put /api/v2.0/projects/quay.io/metadatas/enable_content_trust_cosign"]
    );
    let heads = proxy.request_heads();
    assert_eq!(
        header(&heads[0], "x-is-resource-name"),
        Some("true"),
        "{}",
        heads[0]
    );
    assert_eq!(header(&heads[0], "content-type"), Some("application/json"));
    // A name Harbor would refuse is never sent.
    assert!(harbor.enable_content_trust_cosign("Quay.io").await.is_err());
    assert_eq!(prism.requests().len(), 1);
}
