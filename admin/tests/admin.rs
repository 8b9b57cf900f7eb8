//! The admin command against moto: an app it registers (and whose secret it stores) is served by
//! the gateway; disable, list and remove do what they say. And its command line, checked before
//! AWS is reached.

use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::adapters::store::TokenStore;

/// Runs the command on the harness's table; (success, stdout lines as JSON, stderr).
fn admin(h: &Harness, args: &[&str], stdin: &str) -> (bool, Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxinvoice-admin"))
        .args(args)
        .env("TOKEN_TABLE", &h.table)
        .env("APP_SECRET_PREFIX", "wxinvoice/apps/")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the admin binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn an_app_added_by_the_admin_command_is_served() {
    let h = Harness::new().await;
    let appid = "wxadmin0000000001";
    let secret = "admin-registered-secret";
    h.sim
        .set_options(json!({"apps": [{"kind": "mp", "appid": appid, "secret": secret}]}))
        .await;
    let (ok, out, err) = admin(
        &h,
        &[
            "add",
            "--kind",
            "mp",
            "--appid",
            appid,
            "--origin",
            "https://b.example.com",
            "--secret-name",
            &format!("{appid}-{}", h.table),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out[0]["app"], format!("app#{appid}"));
    // Without its AppSecret the app waits, disabled, and cannot be enabled.
    assert_eq!(out[0]["enabled"], false, "{out:?}");
    assert!(err.contains("put-secret"), "{err}");
    let query = format!("appid={appid}&url=https%3A%2F%2Fb.example.com%2Fp");
    assert_eq!(h.get_token(&query).await.0, 403);
    let (ok, _, err) = admin(&h, &["enable", "--appid", appid], "");
    assert!(!ok && err.contains("no AppSecret stored"), "{err}");
    let (ok, out, err) = admin(
        &h,
        &["put-secret", "--appid", appid],
        &format!("{secret}\n"),
    );
    assert!(ok, "{err}");
    assert!(
        !format!("{out:?}").contains(secret),
        "the secret is never printed"
    );
    let (ok, out, err) = admin(&h, &["enable", "--appid", appid], "");
    assert!(ok && out[0]["enabled"] == true, "{err}");

    let other = h.instance(&[]);
    let (_, v) = h.get_token_on(&other, &query).await;
    assert_eq!(v["appid"], appid, "{v}");
    assert!(v["signature"].is_string(), "{v}");

    let (_, out, _) = admin(&h, &["list"], "");
    assert_eq!(out.len(), 1);
    assert!(
        out[0]["token_left_secs"].as_u64().unwrap() > 7000,
        "{out:?}"
    );
    assert!(!format!("{out:?}").contains(v["access_token"].as_str().unwrap_or("never")));
    // One registration per app: not a case variant, not the deployment's own app.
    let upper = appid.to_uppercase();
    let (ok, _, err) = admin(&h, &["add", "--kind", "mp", "--appid", &upper], "");
    assert!(!ok && err.contains("differs from it in case only"), "{err}");
    h.get_token("").await;
    let own = integration_tests::appid();
    let (ok, _, err) = admin(&h, &["add", "--kind", "mp", "--appid", &own], "");
    assert!(!ok && err.contains("the deployment's own app"), "{err}");
    let (ok, out, _) = admin(&h, &["disable", "--appid", appid], "");
    assert!(ok && out[0]["enabled"] == false);
    let other = h.instance(&[]);
    let (status, _) = h.get_token_on(&other, &query).await;
    assert_eq!(status, 403);
    let (ok, out, _) = admin(&h, &["remove", "--appid", appid], "");
    assert!(ok);
    assert!(admin(&h, &["list"], "").1.is_empty());
    // Its secret goes with it, after the recovery window: it can no longer be read.
    let name = out[0]["secret_deletion"]["secret_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        out[0]["secret_deletion"]["deleted_after_days"], 7,
        "{out:?}"
    );
    let read = aws_sdk_secretsmanager::Client::new(&h.sdk)
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await;
    assert!(read.is_err(), "{name} is still readable");
    // Bad input: a clear message, a failing status.
    let (ok, _, err) = admin(&h, &["add", "--kind", "tv", "--appid", appid], "");
    assert!(
        !ok && err.contains("--kind") && err.contains("must be mp, mini or work"),
        "{err}"
    );
    let (ok, _, err) = admin(&h, &["show", "--appid", "a/b"], "");
    assert!(!ok && err.contains("appid"), "{err}");
}

/// Without the stack's secret prefix the command stores and reads nothing: a wrong default
/// would put secrets where the functions may not read them.
#[tokio::test]
async fn the_secret_prefix_must_be_named() {
    let h = Harness::new().await;
    for args in [
        &["list"][..],
        &["add", "--kind", "mp", "--appid", "wxnoprefix000001"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wxinvoice-admin"))
            .args(args)
            .env("TOKEN_TABLE", &h.table)
            .env_remove("APP_SECRET_PREFIX")
            .stdin(Stdio::null())
            .output()
            .expect("the admin binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("APP_SECRET_PREFIX is not set"),
            "{args:?}: {err}"
        );
    }
    assert!(
        h.store().apps().await.unwrap().is_empty(),
        "nothing registered"
    );
}

/// Help and version succeed on standard output; a bad command line fails with status 1 (as every
/// failure of the command does) and a message naming the problem, before any AWS call.
#[test]
fn the_command_line_is_checked_first() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wxinvoice-admin"))
            .args(args)
            .env_remove("TOKEN_TABLE")
            .stdin(Stdio::null())
            .output()
            .expect("the admin binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok: [(&[&str], &str); 4] = [
        (&["--help"], "put-secret"),
        (&["add", "--help"], "--secret-name"),
        (&["help", "history"], "--card-id"),
        (&["--version"], "wxinvoice-admin 0.1.0"),
    ];
    for (args, shown) in ok {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains(shown) && err.is_empty(), "{args:?}: {out}");
    }
    let refused: [(&[&str], &str); 5] = [
        (&[], "Usage: wxinvoice-admin <COMMAND>"),
        (&["add", "--appid", "wx1"], "--kind"),
        (&["list", "--bogus"], "--bogus"),
        (&["show", "--appid"], "--appid"),
        (&["history", "--card-id", "c", "extra"], "extra"),
    ];
    for (args, named) in refused {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(out.is_empty() && err.contains(named), "{args:?}: {err}");
    }
}
