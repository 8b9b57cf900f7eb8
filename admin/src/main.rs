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
//! Output is JSON, one line per app; no secret or token is ever printed. A command line clap
//! refuses fails with status 1, as every other failure does; `--help` and `--version` succeed.

use std::io::BufRead;

use aws_config::{BehaviorVersion, SdkConfig};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use wxinvoice::adapters::store::{DynamoStore, StoreError, TokenState, TokenStore};
use wxinvoice::domain::apps::{self, AppSettings, Kind};
use wxinvoice::domain::config::TokenApi;

/// Manage the apps a wxinvoice deployment serves: their settings in its token table and their
/// AppSecrets in Secrets Manager. Output is JSON, one line per app; no secret or token is printed.
#[derive(Debug, Parser)]
#[command(
    name = "wxinvoice-admin",
    bin_name = "wxinvoice-admin",
    version,
    // A flag given twice keeps its last value (--origin accumulates), as the command always did.
    args_override_self = true,
    arg_required_else_help = true,
    after_help = "Environment:
  TOKEN_TABLE        the deployment's token table (the stack's TokenTableName output); required
  APP_SECRET_PREFIX  prefix of the apps' secret names in Secrets Manager (the stack's
                     AppSecretPrefix output); required but for history
  AUDIT_TABLE        the audit table (history only)
  AWS credentials, region and endpoints (AWS_ENDPOINT_URL_DYNAMODB, ...) as for the AWS CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register an app, or replace a registered app's settings (a changed --token-api drops its
    /// current token)
    Add(AddArgs),
    /// Store an app's AppSecret, read from standard input, as <APP_SECRET_PREFIX><secret name>
    PutSecret(AppKey),
    /// Print every registered app
    List,
    /// Print one app: its settings and how long its token has left
    Show(AppKey),
    /// Serve an app again
    Enable(AppKey),
    /// Stop serving an app: its requests are refused and its token is no longer refreshed (its
    /// settings and secret are kept)
    Disable(AppKey),
    /// Delete an app's settings and token, and its secret after Secrets Manager's 7-day recovery
    /// window
    Remove(AppKey),
    /// Print an invoice's audit trail, one JSON line per record (needs AUDIT_TABLE)
    History {
        /// The invoice's card_id
        #[arg(long)]
        card_id: String,
    },
}

/// Which registered app: an Official Account or mini program by appid, a WeCom agent by corpid
/// and agentid.
#[derive(Debug, Args)]
struct AppKey {
    /// The appid (a WeCom app: the corpid)
    #[arg(long, value_name = "ID")]
    appid: String,
    /// The WeCom agent's agentid (WeCom apps only)
    #[arg(long, value_name = "N")]
    agentid: Option<String>,
}

impl AppKey {
    /// The app's item key in the token table, once its ids are checked.
    fn key(&self) -> Result<String, String> {
        apps::check_id("appid", &self.appid).map_err(|e| e.to_string())?;
        if let Some(agent) = &self.agentid {
            apps::check_id("agentid", agent).map_err(|e| e.to_string())?;
        }
        Ok(apps::key(&self.appid, self.agentid.as_deref()))
    }
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The account: mp (Official Account), mini (mini program) or work (WeCom agent)
    #[arg(long, value_name = "mp|mini|work", value_parser = kind)]
    kind: Kind,
    #[command(flatten)]
    app: AppKey,
    /// How the app's access_token is fetched: classic (/cgi-bin/token) or stable
    /// (/cgi-bin/stable_token, when another system uses the same appid; not for WeCom)
    #[arg(long, value_name = "classic|stable", default_value = "classic", value_parser = token_api)]
    token_api: TokenApi,
    /// An origin (scheme://host[:port]) whose pages may be signed and call the gateway for this
    /// app (CORS); repeat the flag for several
    #[arg(long = "origin", value_name = "URL")]
    origins: Vec<String>,
    /// The page URL signed when the caller names none
    #[arg(long, value_name = "URL")]
    jssdk_url: Option<String>,
    /// The secret's name after APP_SECRET_PREFIX [default: the appid, or corpid-agentid]
    #[arg(long, value_name = "NAME")]
    secret_name: Option<String>,
    /// Register the app disabled: not served until `enable`
    #[arg(long)]
    disabled: bool,
}

fn kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| "must be mp, mini or work".into())
}

fn token_api(s: &str) -> Result<TokenApi, String> {
    match s {
        "classic" => Ok(TokenApi::Classic),
        "stable" => Ok(TokenApi::Stable),
        _ => Err("must be classic or stable".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        // Status 1 for a bad command line (clap's own is 2), like every other failure.
        std::process::exit(if e.use_stderr() { 1 } else { 0 });
    });
    if let Err(e) = run(&cli.command).await {
        eprintln!("wxinvoice-admin: {e}");
        std::process::exit(1);
    }
}

async fn run(command: &Command) -> Result<(), String> {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let table = std::env::var("TOKEN_TABLE").map_err(|_| "TOKEN_TABLE is not set")?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    if let Command::History { card_id } = command {
        return history(&sdk, card_id).await;
    }
    // No default: a wrong prefix would store secrets the functions may not read.
    let prefix = std::env::var("APP_SECRET_PREFIX")
        .map_err(|_| "APP_SECRET_PREFIX is not set (the stack's AppSecretPrefix output)")?;
    match command {
        Command::Add(args) => add(&store, &sdk, args, &prefix).await,
        Command::PutSecret(app) => put_secret(&store, &sdk, app, &prefix).await,
        Command::List => {
            for (key, state) in store.apps().await.map_err(err)? {
                print_app(&key, &state, &prefix);
            }
            Ok(())
        }
        Command::Show(app)
        | Command::Enable(app)
        | Command::Disable(app)
        | Command::Remove(app) => change(&store, &sdk, command, app, &prefix).await,
        Command::History { .. } => unreachable!("answered above"),
    }
}

/// Days a removed app's AppSecret can still be restored (Secrets Manager's recovery window).
const SECRET_RECOVERY_DAYS: i64 = 7;

fn err(e: StoreError) -> String {
    e.to_string()
}

/// Registers an app, or replaces its settings; enabled only once its AppSecret is stored.
async fn add(
    store: &DynamoStore,
    sdk: &SdkConfig,
    add: &AddArgs,
    prefix: &str,
) -> Result<(), String> {
    let settings = AppSettings {
        kind: add.kind,
        appid: add.app.appid.clone(),
        agentid: add.app.agentid.clone(),
        token_api: add.token_api,
        secret_name: add.secret_name.clone().unwrap_or_else(|| {
            add.app
                .key()
                .unwrap_or_default()
                .trim_start_matches("app#")
                .replace('#', "-")
        }),
        origins: add.origins.clone(),
        jssdk_url: add.jssdk_url.clone(),
        enabled: !add.disabled,
        authorization: None,
    };
    settings.check()?;
    let key = settings.key();
    // The deployment's own app is served from its own item (keyed by its appid), unregistered.
    if settings.agentid.is_none()
        && store.load(&settings.appid).await.map_err(err)? != TokenState::default()
    {
        return Err(format!(
            "{} is the deployment's own app (WECHAT_APPID): it is served without registering",
            settings.appid
        ));
    }
    // One registration per app: WeChat's ids differ by more than case.
    for (registered, _) in store.apps().await.map_err(err)? {
        if registered != key && registered.eq_ignore_ascii_case(&key) {
            return Err(format!(
                "{registered} is registered already (this appid differs from it in case only)"
            ));
        }
    }
    // An app without its AppSecret would only fail: it waits, disabled, for put-secret.
    let mut settings = settings;
    let waiting = settings.enabled && !secret_stored(sdk, &settings, prefix).await?;
    settings.enabled &= !waiting;
    // One write; another token API's token is dropped with it.
    store.put_app(&settings).await.map_err(err)?;
    if waiting {
        eprintln!(
            "wxinvoice-admin: {} is registered disabled: store its AppSecret (put-secret), then enable it",
            settings.key()
        );
    }
    print_app(
        &settings.key(),
        &store.load(&settings.key()).await.map_err(err)?,
        prefix,
    );
    Ok(())
}

/// Stores an app's AppSecret, read from standard input.
async fn put_secret(
    store: &DynamoStore,
    sdk: &SdkConfig,
    app: &AppKey,
    prefix: &str,
) -> Result<(), String> {
    let key = app.key()?;
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
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
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
    Ok(())
}

/// Shows, enables, disables or removes an app.
async fn change(
    store: &DynamoStore,
    sdk: &SdkConfig,
    command: &Command,
    app: &AppKey,
    prefix: &str,
) -> Result<(), String> {
    let key = app.key()?;
    let state = store.load(&key).await.map_err(err)?;
    let Some(mut settings) = state.settings.clone() else {
        return Err(format!("no app {key}"));
    };
    match command {
        Command::Remove(_) => {
            store.remove_app(&key).await.map_err(err)?;
            // Its AppSecret goes too, after Secrets Manager's recovery window.
            let name = format!("{prefix}{}", settings.secret_name);
            let deleted = aws_sdk_secretsmanager::Client::new(sdk)
                .delete_secret()
                .secret_id(&name)
                .recovery_window_in_days(SECRET_RECOVERY_DAYS)
                .send()
                .await;
            let deletion = match deleted {
                Ok(_) => json!({"secret_name": name, "deleted_after_days": SECRET_RECOVERY_DAYS}),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    json!({"secret_name": name, "deleted_after_days": null})
                }
                Err(e) => {
                    return Err(format!(
                        "removed {key}, but its secret {name} is left: Secrets Manager: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    ))
                }
            };
            println!(
                "{}",
                json!({"app": key, "removed": true, "secret_deletion": deletion})
            );
            return Ok(());
        }
        Command::Enable(_) | Command::Disable(_) => {
            settings.enabled = matches!(command, Command::Enable(_));
            if settings.enabled && !secret_stored(sdk, &settings, prefix).await? {
                return Err(format!(
                    "{key} has no AppSecret stored ({prefix}{}): put-secret first",
                    settings.secret_name
                ));
            }
            store.put_app(&settings).await.map_err(err)?;
        }
        _ => {}
    }
    print_app(&key, &store.load(&key).await.map_err(err)?, prefix);
    Ok(())
}

/// Whether the app's AppSecret is in Secrets Manager (and not scheduled for deletion).
async fn secret_stored(
    sdk: &SdkConfig,
    settings: &AppSettings,
    prefix: &str,
) -> Result<bool, String> {
    let name = format!("{prefix}{}", settings.secret_name);
    let described = aws_sdk_secretsmanager::Client::new(sdk)
        .describe_secret()
        .secret_id(&name)
        .send()
        .await;
    match described {
        Ok(d) => Ok(d.deleted_date().is_none()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!(
            "Secrets Manager: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
        )),
    }
}

/// Prints an invoice's audit trail.
async fn history(sdk: &SdkConfig, card_id: &str) -> Result<(), String> {
    // The `#archive-pending` partition holds encrypt_codes: not an invoice's history.
    if card_id.starts_with('#') {
        return Err("--card-id: a card_id (the audit's own partitions start with #)".into());
    }
    let audit = wxinvoice::adapters::audit::AuditLog::new(
        aws_sdk_dynamodb::Client::new(sdk),
        std::env::var("AUDIT_TABLE").map_err(|_| "AUDIT_TABLE is not set")?,
        None,
    );
    for item in audit.history(card_id).await.map_err(|e| e.to_string())? {
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
    Ok(())
}

/// One app as a JSON line: its settings and how long its token has left, never the token.
fn print_app(key: &str, state: &TokenState, prefix: &str) {
    let Some(s) = &state.settings else { return };
    let now = wxinvoice::domain::clock::now_ms();
    let left = |c: &Option<wxinvoice::domain::state::Credential>| {
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
        // An account that authorized the platform: its permission sets and when.
        "authorization": s.authorization.as_ref().map(|a| json!({
            "permissions": a.permissions,
            "authorized_ms": a.authorized_ms,
        })),
        "token_left_secs": left(&state.access_token),
        "refreshed_at_ms": state.refreshed_at_ms,
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    const SUBCOMMANDS: [&str; 8] = [
        "add",
        "put-secret",
        "list",
        "show",
        "enable",
        "disable",
        "remove",
        "history",
    ];

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wxinvoice-admin").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_subcommand_and_each_its_flags() {
        let help = Cli::command().render_help().to_string();
        for sub in SUBCOMMANDS {
            assert!(
                help.lines().any(|l| l.starts_with(&format!("  {sub} "))),
                "{sub}:\n{help}"
            );
        }
        for var in ["TOKEN_TABLE", "APP_SECRET_PREFIX", "AUDIT_TABLE"] {
            assert!(help.contains(var), "{var}:\n{help}");
        }
        let app = &["--appid", "--agentid"][..];
        let flags: [(&str, &[&str]); 8] = [
            (
                "add",
                &[
                    "--kind",
                    "--appid",
                    "--agentid",
                    "--token-api",
                    "--origin",
                    "--jssdk-url",
                    "--secret-name",
                    "--disabled",
                ],
            ),
            ("put-secret", app),
            ("list", &[]),
            ("show", app),
            ("enable", app),
            ("disable", app),
            ("remove", app),
            ("history", &["--card-id"]),
        ];
        for (sub, flags) in flags {
            let e = parse(&[sub, "--help"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{sub}");
            let help = e.to_string();
            for flag in flags {
                assert!(help.contains(&format!("{flag} ")), "{sub} {flag}:\n{help}");
            }
        }
        let e = parse(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
    }

    #[test]
    fn a_bad_command_line_is_refused_naming_the_problem() {
        use ErrorKind::*;
        let cases: [(&[&str], ErrorKind, &str); 14] = [
            (
                &["add", "--appid", "wx1"],
                MissingRequiredArgument,
                "--kind",
            ),
            (&["add", "--kind", "mp"], MissingRequiredArgument, "--appid"),
            (&["put-secret"], MissingRequiredArgument, "--appid"),
            (
                &["show", "--agentid", "1"],
                MissingRequiredArgument,
                "--appid",
            ),
            (&["history"], MissingRequiredArgument, "--card-id"),
            (&["list", "--bogus"], UnknownArgument, "--bogus"),
            (
                &["show", "--appid", "wx1", "--card-id", "c"],
                UnknownArgument,
                "--card-id",
            ),
            (&["show", "--appid"], InvalidValue, "--appid"),
            (&["show", "wx1"], UnknownArgument, "wx1"),
            (
                &["add", "--kind", "mp", "--appid", "wx1", "--disabled", "yes"],
                UnknownArgument,
                "yes",
            ),
            (
                &["add", "--kind", "tv", "--appid", "wx1"],
                ValueValidation,
                "must be mp, mini or work",
            ),
            (
                &[
                    "add",
                    "--kind",
                    "mp",
                    "--appid",
                    "wx1",
                    "--token-api",
                    "new",
                ],
                ValueValidation,
                "must be classic or stable",
            ),
            (&["frob"], InvalidSubcommand, "frob"),
            (&[], DisplayHelpOnMissingArgumentOrSubcommand, "Usage"),
        ];
        for (args, kind, named) in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.kind(), kind, "{args:?}: {e}");
            // On standard error, so main exits with status 1.
            assert!(e.use_stderr(), "{args:?}");
            assert!(e.to_string().contains(named), "{args:?}: {e}");
        }
    }

    #[test]
    fn flags_parse_as_they_always_did() {
        let all = [
            "add",
            "--kind",
            "work",
            "--appid",
            "ww1",
            "--agentid",
            "1000002",
            "--origin",
            "https://a.example.com",
            "--token-api",
            "stable",
            "--origin",
            "https://b.example.com",
            "--jssdk-url",
            "https://a.example.com/p",
            "--secret-name",
            "ww1-agent",
            "--disabled",
        ];
        let Command::Add(add) = parse(&all).unwrap().command else {
            panic!("not add")
        };
        assert_eq!(add.kind, Kind::Work);
        assert_eq!(
            (add.app.appid.as_str(), add.app.agentid.as_deref()),
            ("ww1", Some("1000002"))
        );
        assert_eq!(add.token_api, TokenApi::Stable);
        assert_eq!(
            add.origins,
            ["https://a.example.com", "https://b.example.com"]
        );
        assert_eq!(add.jssdk_url.as_deref(), Some("https://a.example.com/p"));
        assert_eq!(add.secret_name.as_deref(), Some("ww1-agent"));
        assert!(add.disabled);

        let Command::Add(add) = parse(&["add", "--kind", "mp", "--appid", "wx1"])
            .unwrap()
            .command
        else {
            panic!("not add")
        };
        assert_eq!(add.token_api, TokenApi::Classic);
        assert!(add.origins.is_empty() && !add.disabled);
        assert!(add.app.agentid.is_none() && add.jssdk_url.is_none() && add.secret_name.is_none());

        // A flag given twice keeps its last value; a switch may be repeated.
        let twice = ["show", "--appid", "wx1", "--agentid", "1", "--appid", "wx2"];
        let Command::Show(app) = parse(&twice).unwrap().command else {
            panic!("not show")
        };
        assert_eq!(
            (app.appid.as_str(), app.agentid.as_deref()),
            ("wx2", Some("1"))
        );
        let switch = [
            "add",
            "--kind",
            "mp",
            "--appid",
            "wx1",
            "--disabled",
            "--disabled",
        ];
        assert!(parse(&switch).is_ok());
        assert_eq!(
            app.key().unwrap(),
            "app#wx2#1",
            "the key the table is read with"
        );
    }
}
