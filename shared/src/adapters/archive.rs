//! The PDF archive: a reimbursed (CLOSURE) invoice's original file, and its itinerary when it has
//! one, kept in S3 under `{app}/{card_id}/{billing_code}_{billing_no}.pdf` (`…_trip.pdf`), with
//! its SHA-256 in the object's metadata and in the audit trail.
//!
//! - Idempotent: an object already there is never written again (a second CLOSURE, a client's
//!   retry and the schedule's retry store nothing twice).
//! - Bounded: each download is cut at `ARCHIVE_TIMEOUT_MS` and `ARCHIVE_MAX_BYTES`, and at the
//!   request's deadline; only https URLs are fetched (http too with `WECHAT_ALLOW_HTTP=true`).
//! - Never fails the status change: what could not be kept is written as pending work in the
//!   audit table (see `pending`), and the hourly schedule tries again.
//!
//! The S3 and download clients are built on first use, so a cold start that archives nothing pays
//! nothing for them.

use aws_config::SdkConfig;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use sha2::{Digest, Sha256};

use crate::domain::config::ArchiveConfig;
use crate::domain::deadline::Deadline;

/// Invoices archived at once, at most this many.
const KEEP_CONCURRENCY: usize = 5;

/// Where one invoice's files go, and where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfFile {
    pub url: String,
    pub key: String,
}

/// A file in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    /// Written by this call (false: it was there already).
    pub written: bool,
}

/// What the archive did for one invoice: its files kept (the PDF, and the itinerary when there
/// is one), or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveNote {
    Stored(Vec<Kept>),
    Failed(String),
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A host's site: its last two labels (`dl.weixin.qq.com` → `qq.com`).
fn site(host: &str) -> String {
    let labels: Vec<&str> = host.rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// One key segment: characters S3 and people read alike, everything else `_`.
fn segment(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "_".into()
    } else {
        cleaned
    }
}

/// The files of one card (a query answer's item): the invoice's `pdf_url` and its
/// `trip_pdf_url`, when present, with their keys. The invoice is named by its billing code and
/// number (WeChat's documents disagree on which field holds which; both are kept).
pub fn files(app: &str, card: &Map<String, Value>) -> Vec<PdfFile> {
    let card_id = card.get("card_id").and_then(Value::as_str).unwrap_or("");
    let Some(info) = card.get("user_info").and_then(Value::as_object) else {
        return Vec::new();
    };
    let field = |k: &str| {
        info.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = match (field("billing_code"), field("billing_no")) {
        (None, None) => return Vec::new(),
        (code, no) => format!(
            "{}_{}",
            segment(code.unwrap_or("")),
            segment(no.unwrap_or(""))
        ),
    };
    let base = format!("{}/{}/{name}", segment(app), segment(card_id));
    let mut out = Vec::new();
    if let Some(url) = field("pdf_url") {
        out.push(PdfFile {
            url: url.into(),
            key: format!("{base}.pdf"),
        });
    }
    if let Some(url) = field("trip_pdf_url") {
        out.push(PdfFile {
            url: url.into(),
            key: format!("{base}_trip.pdf"),
        });
    }
    out
}

/// The archive: the bucket, and the clients built on first use.
pub struct Archive {
    config: ArchiveConfig,
    sdk: SdkConfig,
    s3: OnceCell<aws_sdk_s3::Client>,
    http: OnceCell<reqwest::Client>,
}

impl Archive {
    pub fn new(config: ArchiveConfig, sdk: SdkConfig) -> Self {
        Archive {
            config,
            sdk,
            s3: OnceCell::new(),
            http: OnceCell::new(),
        }
    }

    async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let mut b = aws_sdk_s3::config::Builder::from(&self.sdk);
                // A local S3 (moto) answers on one host name, not one per bucket.
                if self.sdk.endpoint_url().is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
                {
                    b = b.force_path_style(true);
                }
                aws_sdk_s3::Client::from_conf(b.build())
            })
            .await
    }

    async fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_try_init(|| async {
                // Download links may redirect to a CDN of the same site: a few redirects, https
                // only, and never to another site (a link is WeChat's, the redirect could be
                // anyone's).
                let policy = reqwest::redirect::Policy::custom(|a| {
                    let same_site = a
                        .previous()
                        .first()
                        .and_then(|first| first.host_str())
                        .zip(a.url().host_str())
                        .is_some_and(|(from, to)| site(from) == site(to));
                    if a.previous().len() >= 3 || a.url().scheme() != "https" || !same_site {
                        a.stop()
                    } else {
                        a.follow()
                    }
                });
                reqwest::Client::builder()
                    .redirect(policy)
                    .timeout(self.config.timeout)
                    .build()
                    .map_err(|e| format!("download client: {e}"))
            })
            .await
    }

    /// Keeps one file: nothing is written when the key is already there.
    pub async fn keep(&self, file: &PdfFile, deadline: &Deadline) -> Result<Kept, String> {
        if let Some(kept) = self.existing(&file.key, deadline).await? {
            return Ok(kept);
        }
        let data = self.download(&file.url, deadline).await?;
        let sha256 = sha256_hex(&data);
        let bytes = data.len() as u64;
        let put = self
            .s3()
            .await
            .put_object()
            .bucket(&self.config.bucket)
            .key(&file.key)
            .content_type("application/pdf")
            .metadata("sha256", &sha256)
            // Written once: a file another request stored meanwhile is left as it is.
            .if_none_match("*")
            .body(ByteStream::from(data))
            .send();
        let stored = deadline
            .run(put)
            .await
            .map_err(|_| "the request's time ran out storing the file".to_string())?;
        if let Err(e) = stored {
            let raced = e.raw_response().is_some_and(|r| r.status().as_u16() == 412);
            if raced {
                if let Some(kept) = self.existing(&file.key, deadline).await? {
                    return Ok(kept);
                }
            }
            return Err(format!("S3: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
        }
        Ok(Kept {
            key: file.key.clone(),
            sha256,
            bytes,
            written: true,
        })
    }

    /// The archived file at `key`, if there is one.
    async fn existing(&self, key: &str, deadline: &Deadline) -> Result<Option<Kept>, String> {
        let head = self
            .s3()
            .await
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send();
        match deadline.run(head).await {
            Err(_) => Err("the request's time ran out reading the archive".into()),
            Ok(Ok(h)) => Ok(Some(Kept {
                key: key.into(),
                sha256: h
                    .metadata
                    .and_then(|mut m| m.remove("sha256"))
                    .unwrap_or_default(),
                bytes: h.content_length.unwrap_or(0).max(0) as u64,
                written: false,
            })),
            Ok(Err(e)) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Ok(Err(e)) => Err(format!("S3: {}", aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    /// The file at `url`, at most `max_bytes`, within the archive's timeout and the deadline.
    async fn download(&self, url: &str, deadline: &Deadline) -> Result<Vec<u8>, String> {
        let scheme_ok =
            url.starts_with("https://") || (self.config.allow_http && url.starts_with("http://"));
        if !scheme_ok {
            return Err("the PDF's URL is not https".into());
        }
        let max = self.config.max_bytes;
        let http = self.http().await?;
        let fetch = async {
            let mut resp = http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("download: {}", e.without_url()))?;
            if !resp.status().is_success() {
                return Err(format!("download: HTTP {}", resp.status().as_u16()));
            }
            if resp.content_length().is_some_and(|n| n > max) {
                return Err(format!("the file is over the limit of {max} bytes"));
            }
            let mut data = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("download: {}", e.without_url()))?
            {
                if (data.len() + chunk.len()) as u64 > max {
                    return Err(format!("the file is over the limit of {max} bytes"));
                }
                data.extend_from_slice(&chunk);
            }
            // What is archived as an invoice's original is a PDF, nothing else.
            if !data.starts_with(b"%PDF-") {
                return Err("the file is not a PDF".into());
            }
            Ok(data)
        };
        deadline
            .within(self.config.timeout)
            .run(fetch)
            .await
            .map_err(|_| "download: timed out".to_string())?
    }

    /// Keeps the files of each card (a query answer's items, in order; `None` where WeChat did not
    /// return the invoice), a few at once: what the audit trail records for each.
    pub async fn keep_cards(
        &self,
        app: &str,
        cards: &[Option<&Map<String, Value>>],
        deadline: &Deadline,
    ) -> Vec<ArchiveNote> {
        let notes = cards.iter().map(|card| async move {
            let Some(card) = card else {
                return ArchiveNote::Failed("WeChat did not return the invoice".into());
            };
            let files = files(app, card);
            if files.is_empty() {
                return ArchiveNote::Failed("the invoice names no PDF".into());
            }
            let mut kept = Vec::with_capacity(files.len());
            for f in &files {
                match self.keep(f, deadline).await {
                    Ok(k) => kept.push(k),
                    Err(e) => return ArchiveNote::Failed(e),
                }
            }
            ArchiveNote::Stored(kept)
        });
        let mut out = Vec::with_capacity(cards.len());
        let mut notes = notes.collect::<Vec<_>>().into_iter();
        loop {
            let chunk: Vec<_> = notes.by_ref().take(KEEP_CONCURRENCY).collect();
            if chunk.is_empty() {
                return out;
            }
            out.extend(futures_util::future::join_all(chunk).await);
        }
    }

    /// A presigned GET link to the file at `key`, valid for `ARCHIVE_LINK_SECS`, when the file is
    /// there.
    pub async fn link(&self, key: &str, deadline: &Deadline) -> Option<String> {
        self.existing(key, deadline).await.ok()??;
        let presigning = PresigningConfig::expires_in(self.config.link_ttl).ok()?;
        let req = self
            .s3()
            .await
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .ok()?;
        Some(req.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn redirects_stay_on_the_links_site() {
        assert_eq!(site("dl.weixin.qq.com"), "qq.com");
        assert_eq!(site("mp.weixin.qq.com"), site("pdf.qpic.qq.com"));
        assert_ne!(site("mp.weixin.qq.com"), site("evil.example.com"));
        assert_eq!(site("127.0.0.1"), "0.1");
        assert_eq!(site("localhost"), "localhost");
    }

    #[test]
    fn files_are_keyed_by_app_card_and_billing_numbers() {
        let c = card(json!({"card_id": "pCard", "user_info": {
            "billing_code": "044031900111", "billing_no": "12345678",
            "pdf_url": "https://x/pdf", "trip_pdf_url": "https://x/trip"}}));
        assert_eq!(
            files("wxa", &c),
            [
                PdfFile {
                    url: "https://x/pdf".into(),
                    key: "wxa/pCard/044031900111_12345678.pdf".into()
                },
                PdfFile {
                    url: "https://x/trip".into(),
                    key: "wxa/pCard/044031900111_12345678_trip.pdf".into()
                },
            ]
        );
    }

    #[test]
    fn odd_fields_make_safe_keys_or_none() {
        let table = [
            (
                json!({"card_id": "p/../x", "user_info": {"billing_no": "1 2", "pdf_url": "u"}}),
                Some("wxa/p_.._x/__1_2.pdf"),
            ),
            (
                json!({"card_id": "..", "user_info": {"billing_code": "..", "pdf_url": "u"}}),
                Some("wxa/_/___.pdf"),
            ),
            (json!({"card_id": "c", "user_info": {"pdf_url": "u"}}), None),
            (
                json!({"card_id": "c", "user_info": {"billing_no": "1"}}),
                None,
            ),
            (json!({"card_id": "c"}), None),
        ];
        for (c, want) in table {
            let got = files("wxa", &card(c.clone()));
            assert_eq!(got.first().map(|f| f.key.as_str()), want, "{c}");
        }
    }
}
