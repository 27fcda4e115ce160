//! The SSRF guard: which addresses `web_fetch` may connect to, and the DNS resolver that
//! enforces it at connection time, so the address checked is the address connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be fetched, or `None` when it is a public address.
pub fn internal_kind(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(address) => internal_v4(address),
        IpAddr::V6(address) => internal_v6(address),
    }
}

fn internal_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    let kind = if address == Ipv4Addr::new(169, 254, 169, 254) {
        "cloud metadata"
    } else if address.is_unspecified() || a == 0 {
        "unspecified"
    } else if address.is_loopback() {
        "loopback"
    } else if address.is_private() {
        "private"
    } else if address.is_link_local() {
        "link-local"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (CGNAT)"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol assignment"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking"
    } else if address.is_documentation() {
        "documentation"
    } else if address.is_multicast() {
        "multicast"
    } else if a >= 240 {
        "reserved or broadcast"
    } else {
        return None;
    };
    Some(kind)
}

fn internal_v6(address: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = address.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let segments = address.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        return internal_v4(v4);
    }
    let kind = if address.is_unspecified() {
        "unspecified"
    } else if address.is_loopback() {
        "loopback"
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        "IPv4-compatible"
    } else if segments[0] & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if segments[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if segments[0] & 0xffc0 == 0xfec0 {
        "site-local"
    } else if segments[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "documentation"
    } else if segments == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        "cloud metadata"
    } else {
        return None;
    };
    Some(kind)
}

/// A host's name as written in a URL, lowercase and without IPv6 brackets.
pub fn bare_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .map(str::to_string)
        .unwrap_or(host)
}

/// The hosts the configuration lets through although they are internal.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Arc<[String]>);

impl AllowedHosts {
    pub fn new(hosts: &[String]) -> Self {
        Self(hosts.iter().map(|host| bare_host(host)).collect())
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = bare_host(host);
        self.0.contains(&host)
    }
}

/// Why the guard refused a host.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error(
        "`{host}` resolves to {address}, a {kind} address; fetching inside the network is \
         refused unless `[web] allow_hosts` names the host"
    )]
    Internal {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("cannot resolve `{host}`: {message}")]
    Unresolved { host: String, message: String },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
}

/// The addresses of `host` (port `port`) if it may be fetched: every address it resolves to
/// must be public, unless the host is allowed by name. A literal address is not looked up.
pub async fn check_host(
    allowed: &AllowedHosts,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Refusal> {
    let bare = bare_host(host);
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(address) => vec![SocketAddr::new(address, port)],
        Err(_) => tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|error| Refusal::Unresolved {
                host: bare.clone(),
                message: error.to_string(),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refusal::NoAddress { host: bare });
    }
    if allowed.allows(&bare) {
        return Ok(addresses);
    }
    for address in &addresses {
        if let Some(kind) = internal_kind(address.ip()) {
            return Err(Refusal::Internal {
                host: bare,
                address: address.ip(),
                kind,
            });
        }
    }
    Ok(addresses)
}

/// reqwest's resolver for fetches: resolves like `check_host`, so a name that resolved to a
/// public address when checked and to an internal one when connecting (DNS rebinding) is
/// refused too.
pub struct GuardedResolver {
    pub allowed: AllowedHosts,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = check_host(&allowed, &host, 0).await?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<&'static str> {
        internal_kind(text.parse().expect("address"))
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for address in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "ff02::1",
        ] {
            assert!(kind(address).is_some(), "{address} passed as public");
        }
        assert_eq!(kind("169.254.169.254"), Some("cloud metadata"));
    }

    #[test]
    fn public_addresses_pass() {
        for address in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(kind(address), None, "{address}");
        }
    }

    #[tokio::test]
    async fn allowed_hosts_pass_by_name_only() {
        let allowed = AllowedHosts::new(&["127.0.0.1".to_string()]);
        assert!(check_host(&allowed, "127.0.0.1", 80).await.is_ok());
        assert!(matches!(
            check_host(&allowed, "localhost", 80).await,
            Err(Refusal::Internal { .. })
        ));
        assert!(matches!(
            check_host(&AllowedHosts::default(), "[::1]", 80).await,
            Err(Refusal::Internal { .. })
        ));
    }
}
