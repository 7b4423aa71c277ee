//! `ferry login HOST`: the password from standard input into the auth file, as `docker login`.

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::auth::{self, Credentials};
use crate::cli::LoginArgs;
use crate::distribution::{Connection, RegistryOptions};
use crate::progress::Ui;

#[derive(Serialize)]
struct LoggedIn {
    host: String,
    username: String,
    auth_file: String,
    verified: bool,
}

/// Runs `ferry login`.
pub async fn run(ui: &Ui, args: &LoginArgs) -> anyhow::Result<()> {
    let host = args
        .host
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if host.is_empty() || host.contains('/') {
        bail!(
            "{:?} is not a registry host; give HOST or HOST:PORT",
            args.host
        );
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None => std::env::var("FERRY_REGISTRY_USERNAME")
            .context("give the user name with --username (or FERRY_REGISTRY_USERNAME)")?,
    };
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        ui.status(format!("password for {username}@{host} (end with Ctrl-D):"));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!(
            "no password on standard input; pipe it in, e.g. `ferry login {host} -u {username} < password-file`"
        );
    }
    let credentials = Credentials { username, password };
    if args.verify {
        let options = RegistryOptions::from(&args.registry);
        let hosts = BTreeSet::from([host.clone()]);
        let for_check = credentials.clone();
        let connection =
            Connection::connect(&hosts, options, move |_| Ok(Some(for_check.clone()))).await?;
        connection.check_login(&host).await?;
    }
    let path = auth::login_file();
    auth::store(&path, &host, &credentials)?;
    let result = LoggedIn {
        host: host.clone(),
        username: credentials.username.clone(),
        auth_file: path.display().to_string(),
        verified: args.verify,
    };
    ui.result(&result, || {
        format!(
            "saved credentials of {} for {} in {}{}\n",
            result.username,
            result.host,
            result.auth_file,
            if result.verified {
                " (checked with the registry)"
            } else {
                ""
            }
        )
    });
    Ok(())
}
