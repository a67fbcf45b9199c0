//! `WSGIMapHEADToGET`, `WSGITrustedProxyHeaders` and `WSGITrustedProxies`: parsing, and the
//! address matching the last one needs. Pure Rust.

use std::net::IpAddr;

use super::words::split_words;

/// `WSGIMapHEADToGET`: whether the application sees a HEAD request as GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadMapping {
    /// HEAD stays HEAD.
    Off,
    /// HEAD is always passed as GET (Apache drops the body).
    On,
    /// HEAD is passed as GET only when an output filter that may need the whole response
    /// (a content filter such as DEFLATE) is active for the request (mod_wsgi's default).
    #[default]
    Auto,
}

impl HeadMapping {
    /// Parses `Off`, `On` or `Auto` (any case).
    pub fn parse(arg: &str) -> Result<Self, String> {
        match arg.to_ascii_lowercase().as_str() {
            "off" => Ok(HeadMapping::Off),
            "on" => Ok(HeadMapping::On),
            "auto" => Ok(HeadMapping::Auto),
            _ => Err(format!(
                "WSGIMapHEADToGET must be one of: Off | On | Auto (not '{arg}')"
            )),
        }
    }
}

/// The proxy headers `WSGITrustedProxyHeaders` may name, as CGI variable names.
pub const PROXY_HEADERS: [&str; 15] = [
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_CLIENT_IP",
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_HOST",
    "HTTP_X_FORWARDED_SERVER",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_SCHEME",
    "HTTP_X_SCHEME",
    "HTTP_X_FORWARDED_HTTPS",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_HTTPS",
    "HTTP_X_SCRIPT_NAME",
    "HTTP_X_FORWARDED_SCRIPT_NAME",
];

/// Parses the arguments of `WSGITrustedProxyHeaders`: header names such as
/// `X-Forwarded-For`, returned as CGI variable names (`HTTP_X_FORWARDED_FOR`).
pub fn parse_proxy_headers(args: &str) -> Result<Vec<String>, String> {
    let words = split_words(args);
    if words.is_empty() {
        return Err("WSGITrustedProxyHeaders: name at least one header".into());
    }
    words
        .iter()
        .map(|w| {
            let env = format!("HTTP_{}", w.to_ascii_uppercase().replace('-', "_"));
            if PROXY_HEADERS.contains(&env.as_str()) {
                Ok(env)
            } else {
                Err(format!(
                    "WSGITrustedProxyHeaders: '{w}' is not a proxy header rswsgi understands \
                     (X-Forwarded-For, X-Client-IP, X-Real-IP, X-Forwarded-Host, X-Host, \
                     X-Forwarded-Server, X-Forwarded-Port, X-Forwarded-Proto, X-Forwarded-Scheme, \
                     X-Scheme, X-Forwarded-HTTPS, X-Forwarded-SSL, X-HTTPS, X-Script-Name, \
                     X-Forwarded-Script-Name)"
                ))
            }
        })
        .collect()
}

/// An address or network: `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `10.1` (the first
/// octets of a network), `::1`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// Parses one address or network.
    pub fn parse(word: &str) -> Result<Self, String> {
        let bad =
            || format!("WSGITrustedProxies: cannot parse '{word}' as an IP address or subnet");
        let (ip, mask) = match word.split_once('/') {
            Some((ip, mask)) => (ip, Some(mask)),
            None => (word, None),
        };
        let (addr, full, implied) = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                // A peer's mapped address is compared as IPv4, so this would never match;
                // APR (and so mod_wsgi) refuses the form too.
                return Err(format!(
                    "WSGITrustedProxies: '{word}' is an IPv4-mapped IPv6 address; write the IPv4 \
                     address ({}) instead",
                    v6.to_ipv4_mapped().expect("mapped")
                ));
            }
            Ok(a) if a.is_ipv4() => (a, 32, 32),
            Ok(a) => (a, 128, 128),
            Err(_) => {
                // Leading octets of an IPv4 network ("10", "10.1", "10.1.2").
                let octets: Vec<u8> = ip
                    .split('.')
                    .map(|o| o.parse::<u8>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad())?;
                if octets.is_empty() || octets.len() > 3 {
                    return Err(bad());
                }
                let mut v4 = [0u8; 4];
                v4[..octets.len()].copy_from_slice(&octets);
                (IpAddr::from(v4), 32, 8 * octets.len() as u8)
            }
        };
        let prefix = match mask {
            None => implied,
            Some(m) => match (m.parse::<u8>(), m.parse::<std::net::Ipv4Addr>()) {
                (Ok(p), _) if p <= full => p,
                (_, Ok(netmask)) if addr.is_ipv4() => {
                    let bits = u32::from(netmask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad());
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(bad()),
            },
        };
        Ok(Subnet { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// Parses the arguments of `WSGITrustedProxies`.
pub fn parse_trusted_proxies(args: &str) -> Result<Vec<Subnet>, String> {
    let words = split_words(args);
    if words.is_empty() {
        return Err("WSGITrustedProxies: name at least one address or subnet".into());
    }
    words.iter().map(|w| Subnet::parse(w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn head_mapping() {
        assert_eq!(HeadMapping::parse("auto"), Ok(HeadMapping::Auto));
        assert_eq!(HeadMapping::parse("On"), Ok(HeadMapping::On));
        assert_eq!(HeadMapping::parse("OFF"), Ok(HeadMapping::Off));
        assert!(HeadMapping::parse("maybe").is_err());
    }

    #[test]
    fn proxy_header_names() {
        assert_eq!(
            parse_proxy_headers("X-Forwarded-For x-forwarded-proto").unwrap(),
            ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"]
        );
        assert!(parse_proxy_headers("X-Evil")
            .unwrap_err()
            .contains("X-Evil"));
        assert!(parse_proxy_headers("").is_err());
    }

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.0.0.0/8").unwrap();
        assert!(s.contains(ip("10.200.1.2")) && !s.contains(ip("11.0.0.1")));
        assert!(Subnet::parse("10.1").unwrap().contains(ip("10.1.9.9")));
        assert!(!Subnet::parse("10.1").unwrap().contains(ip("10.2.0.1")));
        let m = Subnet::parse("192.168.4.0/255.255.252.0").unwrap();
        assert!(m.contains(ip("192.168.7.255")) && !m.contains(ip("192.168.8.0")));
        let one = Subnet::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "mapped IPv4");
        let v6 = Subnet::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(Subnet::parse("::1").unwrap().contains(ip("::1")));
        for bad in [
            "",
            "x",
            "10.0.0.0/33",
            "10.0.0.0/255.0.255.0",
            "1.2.3.4.5",
            "10/40",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
        assert!(Subnet::parse("10/8").unwrap().contains(ip("10.3.2.1")));
        assert_eq!(
            parse_trusted_proxies("127.0.0.1 10.0.0.0/8").unwrap().len(),
            2
        );
    }

    #[test]
    fn ipv4_mapped_subnets_are_refused() {
        // They never matched: a peer's mapped address is compared as IPv4 (found by the
        // directives fuzz target's check, on a seed input). APR refuses them too; the IPv4
        // form is what works.
        for mapped in [
            "::ffff:10.0.0.1",
            "::ffff:10.0.0.0/104",
            "::FFFF:127.0.0.1/128",
        ] {
            let e = Subnet::parse(mapped).unwrap_err();
            assert!(e.contains("IPv4"), "{mapped}: {e}");
        }
        assert!(Subnet::parse("::1").is_ok() && Subnet::parse("::/0").is_ok());
    }
}
