//! Configuration: defaults, bounds and the messages that name a bad setting.

use super::*;
use std::collections::HashMap;

mod base {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 4] = [
        ("WECHAT_APPID", "wx1"),
        ("WECHAT_SECRET", "s3cr3t"),
        ("TOKEN_TABLE", "t"),
        ("JSSDK_URL", "https://example.com/"),
    ];

    #[test]
    fn defaults_apply_and_secret_is_redacted() {
        let c = from(&BASE).unwrap();
        assert_eq!(c.api_base, MP_API_BASE);
        assert_eq!(c.platform, Platform::Mp);
        assert_eq!(c.token_api, TokenApi::Classic);
        assert_eq!(c.allowed_origins, ["https://example.com"]);
        assert_eq!(c.timing.lease, Duration::from_secs(10));
        assert_eq!(c.limits.max_items, 100);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
    }

    #[test]
    fn missing_or_bad_values_are_named() {
        let e = from(&[
            ("WECHAT_APPID", "wx1"),
            ("JSSDK_URL", "https://a.example.com/"),
        ])
        .unwrap_err();
        assert!(e.0.contains("TOKEN_TABLE"));
        let mut v = BASE.to_vec();
        v.push(("WECHAT_TIMEOUT_MS", "fast"));
        assert!(from(&v).unwrap_err().0.contains("WECHAT_TIMEOUT_MS"));
        let mut v = BASE.to_vec();
        v.push(("REFRESH_LEASE_MS", "3000"));
        assert!(from(&v).unwrap_err().0.contains("REFRESH_LEASE_MS"));
    }

    #[test]
    fn bounds_are_checked_with_clear_messages() {
        #[rustfmt::skip]
        let table = [
            ("REFRESH_WAIT_MS", "18446744073709551615", "REFRESH_WAIT_MS must be between 0 and 60000 (ms)"),
            ("TOKEN_GRACE_SECS", "600", "TOKEN_GRACE_SECS must be between 0 and 300 (s), not 600"),
            ("WECHAT_TIMEOUT_MS", "10", "WECHAT_TIMEOUT_MS must be between 100 and 30000"),
            ("REFRESH_LEASE_MS", "600000", "REFRESH_LEASE_MS must be between 100 and 120000"),
            ("REFRESH_AHEAD_SECS", "9000", "REFRESH_AHEAD_SECS must be between 0 and 7200"),
            ("DEADLINE_RESERVE_MS", "60000", "DEADLINE_RESERVE_MS must be between 0 and 5000"),
            ("CACHE_TTL_SECS", "299", ""),
            ("EXPOSE_ACCESS_TOKEN", "1", "EXPOSE_ACCESS_TOKEN must be true or false"),
            ("BATCH_KEEPS_ORDER", "yes", "BATCH_KEEPS_ORDER must be true or false"),
            ("AUDIT_RETENTION_DAYS", "40000", "AUDIT_RETENTION_DAYS must be between 0 and 36500"),
            ("SCHEDULE_CONCURRENCY", "0", "SCHEDULE_CONCURRENCY must be a positive whole number"),
            ("IDEMPOTENCY_TTL_SECS", "60", "IDEMPOTENCY_TTL_SECS must be between 3600 and 2592000"),
            ("IDEMPOTENCY_TTL_SECS", "a day", "IDEMPOTENCY_TTL_SECS must be a whole number of seconds"),
            ("IDEMPOTENCY_TTL_SECS", "7200", ""),
        ];
        for (key, value, message) in table {
            let mut v = BASE.to_vec();
            v.push((key, value));
            match from(&v) {
                Ok(_) => assert!(message.is_empty(), "{key}={value} was accepted"),
                Err(e) => assert!(
                    !message.is_empty() && e.0.contains(message),
                    "{key}={value}: {e}"
                ),
            }
        }
    }

    #[test]
    fn archive_settings_are_bounded_when_there_is_an_archive() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = BASE.to_vec();
            v.push(("ARCHIVE_BUCKET", "b"));
            v.extend_from_slice(extra);
            from(&v)
        };
        let a = with(&[]).unwrap().archive.unwrap();
        assert_eq!((a.bucket.as_str(), a.link_ttl.as_secs()), ("b", 900));
        let e = with(&[("ARCHIVE_LINK_SECS", "7200")]).unwrap_err();
        assert!(
            e.0.contains("ARCHIVE_LINK_SECS must be between 60 and 3600"),
            "{e}"
        );
        let e = with(&[("ARCHIVE_TIMEOUT_MS", "20000")]).unwrap_err();
        assert!(
            e.0.contains("ARCHIVE_TIMEOUT_MS must be between 100 and 15000"),
            "{e}"
        );
        assert!(
            from(&BASE).unwrap().archive.is_none(),
            "no bucket, no archive"
        );
    }

    #[test]
    fn backup_host_by_default_for_the_default_mp_host_only() {
        let c = from(&BASE).unwrap();
        assert_eq!(c.api_backup_base.as_deref(), Some(MP_API_BACKUP_BASE));
        let mut v = BASE.to_vec();
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:1"));
        assert_eq!(from(&v).unwrap().api_backup_base, None);
        v.push(("WECHAT_API_BACKUP_BASE", "http://127.0.0.1:2/"));
        assert_eq!(
            from(&v).unwrap().api_backup_base.as_deref(),
            Some("http://127.0.0.1:2")
        );
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BACKUP_BASE", "off"));
        assert_eq!(from(&v).unwrap().api_backup_base, None);
        let mut v = BASE.to_vec();
        v.push(("WECHAT_PLATFORM", "work"));
        assert_eq!(
            from(&v).unwrap().api_backup_base,
            None,
            "WeCom documents no backup host"
        );
    }

    #[test]
    fn arn_is_used_when_no_plain_secret() {
        let c = from(&[
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET_ARN", "arn:x"),
            ("TOKEN_TABLE", "t"),
            ("JSSDK_URL", "https://example.com/"),
        ])
        .unwrap();
        assert!(
            matches!(c.secret, Some(SecretSource::SecretsManager { ref arn }) if arn == "arn:x")
        );
    }

    #[test]
    fn plain_http_only_when_asked_for() {
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:9100"));
        assert!(from(&v).unwrap_err().0.contains("WECHAT_ALLOW_HTTP"));
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        assert!(from(&v).unwrap().allow_http);
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BACKUP_BASE", "http://evil.example.com"));
        assert!(from(&v).is_err());
    }

    #[test]
    fn api_base_trailing_slash_is_trimmed() {
        let mut v = BASE.to_vec();
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:9100/"));
        assert_eq!(from(&v).unwrap().api_base, "http://127.0.0.1:9100");
    }
}

mod platform {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = [
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET", "s"),
            ("TOKEN_TABLE", "t"),
            ("JSSDK_URL", "https://expense.example.com/page"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn platform_token_api_and_origins() {
        let work = from(&[("WECHAT_PLATFORM", "work")]).unwrap();
        assert_eq!(
            (work.platform, work.api_base.as_str()),
            (Platform::Work, WORK_API_BASE)
        );
        let stable = from(&[("WECHAT_TOKEN_API", "stable")]).unwrap();
        assert_eq!(stable.token_api, TokenApi::Stable);
        assert!(from(&[("WECHAT_PLATFORM", "work"), ("WECHAT_TOKEN_API", "stable")]).is_err());
        // A WeCom agent keeps its agentConfig ticket; elsewhere there is no agent.
        assert_eq!((work.agentid, work.timing.agent_ticket), (None, false));
        let agent = from(&[("WECHAT_PLATFORM", "work"), ("WECHAT_AGENT_ID", "1000002")]).unwrap();
        assert_eq!(
            (agent.agentid.as_deref(), agent.timing.agent_ticket),
            (Some("1000002"), true)
        );
        assert!(
            from(&[("WECHAT_AGENT_ID", "1000002")]).is_err(),
            "not on an Official Account"
        );
        assert!(from(&[("WECHAT_PLATFORM", "work"), ("WECHAT_AGENT_ID", "x1")]).is_err());
        assert!(from(&[("WECHAT_PLATFORM", "qq")])
            .unwrap_err()
            .0
            .contains("WECHAT_PLATFORM"));
        let c = from(&[(
            "ALLOWED_ORIGINS",
            "https://A.example.com, http://localhost:8080/",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example.com", "http://localhost:8080"]
        );
        assert!(from(&[("ALLOWED_ORIGINS", "not an origin")]).is_err());
        assert_eq!(
            from(&[]).unwrap().allowed_origins,
            ["https://expense.example.com"]
        );
    }
}
