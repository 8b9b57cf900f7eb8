//! `wxinvoice-admin`: manages the apps a deployment serves, in its token table (`TOKEN_TABLE`)
//! and Secrets Manager (`APP_SECRET_PREFIX`), through the configured AWS endpoint (moto locally:
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
//!
//! ```text
//! wxinvoice-admin add --kind mp|mini|work --appid ID [--agentid N] [--token-api classic|stable]
//!                     [--origin https://…]… [--jssdk-url URL] [--secret-name NAME] [--disabled]
//! wxinvoice-admin put-secret --appid ID [--agentid N]     (the AppSecret on standard input)
//! wxinvoice-admin list
//! wxinvoice-admin show|enable|disable|remove --appid ID [--agentid N]
//! wxinvoice-admin history --card-id CARD_ID               (needs AUDIT_TABLE)
//! ```
//!
//! Output is JSON, one line per app; no secret or token is ever printed. The arguments are parsed
//! by hand: a dozen flags of one tool run by hand do not need an argument-parsing crate's build.

use std::collections::HashMap;
use std::io::BufRead;

use aws_config::BehaviorVersion;
use serde_json::{json, Value};
use wxinvoice::apps::{self, AppSettings, Kind};
use wxinvoice::config::TokenApi;
use wxinvoice::store::{DynamoStore, TokenState, TokenStore};

const USAGE: &str =
    "usage: wxinvoice-admin add|put-secret|list|show|enable|disable|remove|history [flags]
  add        --kind mp|mini|work --appid ID [--agentid N] [--token-api classic|stable]
             [--origin URL]... [--jssdk-url URL] [--secret-name NAME] [--disabled]
  put-secret --appid ID [--agentid N]   (reads the AppSecret from standard input)
  list
  show | enable | disable | remove  --appid ID [--agentid N]
  history    --card-id CARD_ID  (the audit trail; AUDIT_TABLE)";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args).await {
        eprintln!("wxinvoice-admin: {e}");
        if e.starts_with("usage") || e.contains("flag") {
            eprintln!("{USAGE}");
        }
        std::process::exit(1);
    }
}

/// `--flag value` pairs (`--origin` may repeat) and bare switches.
struct Flags(HashMap<String, Vec<String>>);

impl Flags {
    fn parse(args: &[String], switches: &[&str]) -> Result<Flags, String> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{a}` (flags start with --)"))?;
            let value = if switches.contains(&name) {
                "true".to_string()
            } else {
                it.next()
                    .ok_or_else(|| format!("flag --{name} needs a value"))?
                    .clone()
            };
            map.entry(name.to_string()).or_default().push(value);
        }
        Ok(Flags(map))
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.one(name)
            .ok_or_else(|| format!("flag --{name} is required"))
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown flag --{k}")),
            None => Ok(()),
        }
    }

    fn key(&self) -> Result<String, String> {
        let appid = self.required("appid")?;
        apps::check_id("appid", appid).map_err(|e| e.errmsg())?;
        if let Some(agent) = self.one("agentid") {
            apps::check_id("agentid", agent).map_err(|e| e.errmsg())?;
        }
        Ok(apps::key(appid, self.one("agentid")))
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn run(args: &[String]) -> Result<(), String> {
    let (command, rest) = args.split_first().ok_or("usage")?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), env("TOKEN_TABLE")?);
    let prefix = std::env::var("APP_SECRET_PREFIX").unwrap_or_else(|_| "wxinvoice/apps/".into());
    let err = |e: wxinvoice::store::StoreError| e.to_string();
    match command.as_str() {
        "add" => {
            let f = Flags::parse(rest, &["disabled"])?;
            f.only(&[
                "kind",
                "appid",
                "agentid",
                "token-api",
                "origin",
                "jssdk-url",
                "secret-name",
                "disabled",
            ])?;
            let kind = f.required("kind")?;
            let settings = AppSettings {
                kind: Kind::parse(kind)
                    .ok_or(format!("--kind must be mp, mini or work, not `{kind}`"))?,
                appid: f.required("appid")?.into(),
                agentid: f.one("agentid").map(str::to_string),
                token_api: match f.one("token-api") {
                    None | Some("classic") => TokenApi::Classic,
                    Some("stable") => TokenApi::Stable,
                    Some(o) => {
                        return Err(format!("--token-api must be classic or stable, not `{o}`"))
                    }
                },
                secret_name: f.one("secret-name").map(str::to_string).unwrap_or_else(|| {
                    f.key()
                        .unwrap_or_default()
                        .trim_start_matches("app#")
                        .replace('#', "-")
                }),
                origins: f.all("origin"),
                jssdk_url: f.one("jssdk-url").map(str::to_string),
                enabled: f.one("disabled").is_none(),
            };
            settings.check()?;
            // Another token API is another token: the old one is not carried over.
            let before = store.load(&settings.key()).await.map_err(err)?;
            if before
                .settings
                .is_some_and(|b| b.token_api != settings.token_api)
            {
                store.remove_app(&settings.key()).await.map_err(err)?;
            }
            store.put_app(&settings).await.map_err(err)?;
            print_app(
                &settings.key(),
                &store.load(&settings.key()).await.map_err(err)?,
                &prefix,
            );
        }
        "put-secret" => {
            let f = Flags::parse(rest, &[])?;
            f.only(&["appid", "agentid"])?;
            let key = f.key()?;
            let state = store.load(&key).await.map_err(err)?;
            let settings = state
                .settings
                .ok_or(format!("no app {key}: add it first"))?;
            let mut secret = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut secret)
                .map_err(|e| format!("reading the secret: {e}"))?;
            let secret = secret.trim();
            if secret.is_empty() {
                return Err("no secret on standard input".into());
            }
            let name = format!("{prefix}{}", settings.secret_name);
            let sm = aws_sdk_secretsmanager::Client::new(&sdk);
            let created = sm
                .create_secret()
                .name(&name)
                .secret_string(secret)
                .send()
                .await;
            if let Err(e) = created {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception());
                if !exists {
                    return Err(format!(
                        "Secrets Manager: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    ));
                }
                sm.put_secret_value()
                    .secret_id(&name)
                    .secret_string(secret)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "Secrets Manager: {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                        )
                    })?;
            }
            println!(
                "{}",
                json!({"app": key, "secret_name": name, "stored": true})
            );
        }
        "list" => {
            Flags::parse(rest, &[])?.only(&[])?;
            for (key, state) in store.apps().await.map_err(err)? {
                print_app(&key, &state, &prefix);
            }
        }
        "show" | "enable" | "disable" | "remove" => {
            let f = Flags::parse(rest, &[])?;
            f.only(&["appid", "agentid"])?;
            let key = f.key()?;
            let state = store.load(&key).await.map_err(err)?;
            let Some(mut settings) = state.settings.clone() else {
                return Err(format!("no app {key}"));
            };
            match command.as_str() {
                "remove" => {
                    store.remove_app(&key).await.map_err(err)?;
                    println!("{}", json!({"app": key, "removed": true}));
                    return Ok(());
                }
                "enable" | "disable" => {
                    settings.enabled = command == "enable";
                    store.put_app(&settings).await.map_err(err)?;
                }
                _ => {}
            }
            print_app(&key, &store.load(&key).await.map_err(err)?, &prefix);
        }
        "history" => {
            let f = Flags::parse(rest, &[])?;
            f.only(&["card-id"])?;
            // The `#archive-pending` partition holds encrypt_codes: not an invoice's history.
            if f.required("card-id")?.starts_with('#') {
                return Err(
                    "--card-id: a card_id (the audit's own partitions start with #)".into(),
                );
            }
            let audit = wxinvoice::audit::AuditLog::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                env("AUDIT_TABLE")?,
                None,
            );
            for item in audit.history(f.required("card-id")?).await? {
                let record: serde_json::Map<String, Value> = item
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            aws_sdk_dynamodb::types::AttributeValue::S(s) => json!(s),
                            aws_sdk_dynamodb::types::AttributeValue::N(n) => {
                                json!(n.parse::<f64>().unwrap_or(0.0))
                            }
                            other => json!(format!("{other:?}")),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                println!("{}", Value::Object(record));
            }
        }
        other => return Err(format!("usage: unknown command `{other}`")),
    }
    Ok(())
}

/// One app as a JSON line: its settings and how long its token has left, never the token.
fn print_app(key: &str, state: &TokenState, prefix: &str) {
    let Some(s) = &state.settings else { return };
    let now = wxinvoice::token::now_ms();
    let left = |c: &Option<wxinvoice::store::Credential>| {
        c.as_ref()
            .map(|c| c.expires_at_ms.saturating_sub(now) / 1000)
    };
    let line = json!({
        "app": key,
        "kind": s.kind.as_str(),
        "appid": s.appid,
        "agentid": s.agentid,
        "token_api": match s.token_api { TokenApi::Classic => "classic", TokenApi::Stable => "stable" },
        "secret_name": format!("{prefix}{}", s.secret_name),
        "origins": s.origins,
        "jssdk_url": s.jssdk_url,
        "enabled": s.enabled,
        "token_left_secs": left(&state.access_token),
        "refreshed_at_ms": state.refreshed_at_ms,
    });
    println!("{line}");
}
