//! Who is calling, by address: API Gateway's `sourceIp`, or, behind a trusted
//! proxy, the address that proxy appended to a forwarding header. Keys the
//! per-client login limit and appears in the request log.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

/// The rule that picks a request's client address; configured once per process.
#[derive(Debug, Clone)]
pub struct ClientIp {
    /// A header trusted proxies append to (`X-Forwarded-For`), if any.
    header: Option<HeaderName>,
    /// How many trusted proxies append to it: the client's address is this
    /// many entries from the right. Entries further left come from the client.
    trusted_hops: usize,
}

impl ClientIp {
    /// Trusts `header` (lower-case name) at `trusted_hops` entries from the
    /// right, at least 1; without a header, or with a name that is not a valid
    /// header name, only `sourceIp` is used.
    pub fn new(header: Option<&str>, trusted_hops: usize) -> Self {
        Self { header: header.and_then(|name| HeaderName::try_from(name).ok()), trusted_hops: trusted_hops.max(1) }
    }

    /// The caller's address: the trusted header's entry when configured and
    /// present, else what API Gateway saw (`source_ip`).
    pub fn of(&self, headers: &HeaderMap, source_ip: Option<&str>) -> String {
        self.forwarded(headers).unwrap_or_else(|| source_ip.unwrap_or("unknown").to_owned())
    }

    fn forwarded(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.header.as_ref()?;
        // Several header lines form one comma-separated list, in order (RFC 9110, 5.3).
        // Counted as bytes: a line the client filled with anything but ASCII
        // must still count as entries, or it would shift which one is trusted.
        let entries: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|entry| !entry.is_empty())
            .collect();
        let index = entries.len().checked_sub(self.trusted_hops)?;
        std::str::from_utf8(entries[index]).ok()?.parse::<IpAddr>().ok().map(|ip| ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_proxys_entry_counts_not_the_clients() {
        let one_proxy = ClientIp::new(Some("x-forwarded-for"), 1);
        assert_eq!(one_proxy.of(&headers(&["6.6.6.6, 10.0.0.7"]), Some("127.0.0.1")), "10.0.0.7");
        assert_eq!(one_proxy.of(&headers(&["6.6.6.6", "10.0.0.7"]), None), "10.0.0.7");
        assert_eq!(one_proxy.of(&headers(&["10.0.0.7"]), None), "10.0.0.7");
        let two_proxies = ClientIp::new(Some("x-forwarded-for"), 2);
        assert_eq!(two_proxies.of(&headers(&["6.6.6.6, 10.0.0.7, 172.16.0.1"]), None), "10.0.0.7");
    }

    #[test]
    fn a_line_of_non_ascii_bytes_still_counts_as_the_clients() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "10.0.0.66".parse().unwrap());
        headers.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff\xfe, 10.0.0.7").unwrap());
        let two_proxies = ClientIp::new(Some("x-forwarded-for"), 2);
        assert_eq!(
            two_proxies.of(&headers, Some("203.0.113.9")),
            "203.0.113.9",
            "the second from the right is junk: not trusted"
        );
        let one_proxy = ClientIp::new(Some("x-forwarded-for"), 1);
        assert_eq!(one_proxy.of(&headers, None), "10.0.0.7");
    }

    #[test]
    fn falls_back_to_the_source_address() {
        let trusted = ClientIp::new(Some("x-forwarded-for"), 2);
        assert_eq!(trusted.of(&headers(&["10.0.0.7"]), Some("203.0.113.9")), "203.0.113.9", "fewer entries than hops");
        assert_eq!(trusted.of(&headers(&["junk, also junk"]), Some("203.0.113.9")), "203.0.113.9");
        let untrusted = ClientIp::new(None, 1);
        assert_eq!(untrusted.of(&headers(&["6.6.6.6"]), Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(untrusted.of(&HeaderMap::new(), None), "unknown");
    }
}
