//! Origins (`scheme://host[:port]`) of page URLs: what a page may be signed for and may call the
//! API from (CORS).

use url::Url;

/// The origin (`scheme://host[:port]`, lower case, default port left out) of an http(s) URL
/// without user information.
pub fn origin_of(text: &str) -> Option<String> {
    // The URL parser reads `https:///host` as `https://host`; a page URL with an empty
    // authority is not one.
    let (_, rest) = text.split_once("://")?;
    if rest.starts_with('/') || rest.starts_with('\\') {
        return None;
    }
    let url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.host_str()?;
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_normalised() {
        #[rustfmt::skip]
        let table = [
            ("https://Expense.Example.com:443/a?b#c", Some("https://expense.example.com")),
            ("http://localhost:8080/", Some("http://localhost:8080")),
            ("http://a.example.com:80", Some("http://a.example.com")),
            ("https://a.example.com?x=1", Some("https://a.example.com")),
            ("HTTPS://a.example.com/", Some("https://a.example.com")),
            ("http://[::1]:9000/", Some("http://[::1]:9000")),
            ("ftp://a.example.com/", None),
            ("https://user@evil.example.com/", None),
            ("https://:pw@evil.example.com/", None),
            ("https:///path", None),
            ("javascript:alert(1)", None),
            ("not a url", None),
        ];
        for (url, want) in table {
            assert_eq!(origin_of(url).as_deref(), want, "{url}");
        }
    }
}
