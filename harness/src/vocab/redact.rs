//! Credential redaction for anything printed or written: URLs with `user:pass@` lose them.

/// Removes credentials from every `scheme://user:pass@` in `text`: they become `scheme://***@`.
/// Use it on anything that may contain a URL before printing it.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#', whitespace or quote.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_removed() {
        assert_eq!(
            super::redact("see http://u:p@h:1/v2/ and https://x@y/"),
            "see http://***@h:1/v2/ and https://***@y/"
        );
        assert_eq!(super::redact("no url here"), "no url here");
    }
}
