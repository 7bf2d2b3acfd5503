//! Credentials are never printed: [`urls`] hides the password of every URL's userinfo in a text
//! (`mqtt://user:secret@host` → `mqtt://user:***@host`). It is applied wherever a URL is logged
//! or put in an error (the MQTT URL, feed destination URLs, broker URLs for mitigation) and to
//! the text of errors from HTTP clients, which quote the URL they failed on.

/// What a hidden secret is printed as.
pub(crate) const HIDDEN: &str = "***";

/// `text` with the password of every URL's userinfo replaced by [`HIDDEN`] (a userinfo without
/// `:` may be a token used as the user name, and is hidden whole). Text without such a URL comes
/// back unchanged. Works on the text, so a URL too malformed to parse is still redacted.
pub(crate) fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query, fragment or where the URL ends in prose.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '\'' | '"' | ')' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        // The last '@' ends the userinfo: a password may itself contain '@'.
        match authority.rfind('@') {
            Some(at) if at > 0 => {
                match authority[..at].split_once(':') {
                    Some((user, _password)) if !user.is_empty() => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(HIDDEN);
                    }
                    _ => out.push_str(HIDDEN),
                }
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_in_userinfo_is_hidden() {
        assert_eq!(
            urls("mqtt://user:secret@127.0.0.1:1883"),
            "mqtt://user:***@127.0.0.1:1883"
        );
        assert_eq!(
            urls("https://u:p%40ss@example.com/path?q=1"),
            "https://u:***@example.com/path?q=1"
        );
    }

    #[test]
    fn password_containing_at_and_colon_is_hidden_whole() {
        let shown = urls("mqtt://user:se:cr@et@broker:1883/");
        assert_eq!(shown, "mqtt://user:***@broker:1883/");
        assert!(!shown.contains("se:cr") && !shown.contains("et@"));
    }

    #[test]
    fn userinfo_without_colon_is_hidden_as_it_may_be_a_token() {
        assert_eq!(
            urls("https://tok3n@example.com/"),
            "https://***@example.com/"
        );
    }

    #[test]
    fn every_url_in_an_error_text_is_redacted() {
        assert_eq!(
            urls(
                "error sending request for url (http://a:pw@h:1/x): refused; also 'mqtt://b:pw2@m'"
            ),
            "error sending request for url (http://a:***@h:1/x): refused; also 'mqtt://b:***@m'"
        );
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for raw in [
            "mqtt://127.0.0.1:1883",
            "http://example.com/a@b",
            "http://example.com/?to=a@b",
            "not a url",
            "",
        ] {
            assert_eq!(urls(raw), raw);
        }
    }
}
