//! The advertised address: the `host:port` a process hands to other
//! processes so they can reach it (Spark's `spark.driver.host` and an
//! executor's host as it registers with the driver).
//!
//! A process bound to an unspecified address (`0.0.0.0` or `[::]`) accepts
//! connections on every interface, but "0.0.0.0" means nothing to another
//! host: advertising it makes every shuffle fetch and every task launch fail
//! with "tcp connect error". So the address handed out is chosen, first
//! match wins:
//!
//! 1. `--advertise HOST[:PORT]` when given (a name or an IP; the port
//!    defaults to the bound port). For NAT, containers, or a name that other
//!    hosts resolve.
//! 2. The bound address, when it is a specific one (`10.0.0.5:0` bound as
//!    `10.0.0.5:41234`, or `127.0.0.1:...` on a single machine).
//! 3. For an executor: the local address of its connection to the driver,
//!    the interface the kernel routes driver traffic through, which hosts on
//!    the driver's network reach it at. Unless that is loopback (a driver
//!    on this host): executors on other hosts fetch its shuffle blocks too,
//!    so an address of the next rules, which this host reaches as well.
//! 4. The address the host's name resolves to, if an interface of this host
//!    has it (a name that resolves to a loopback address, as many
//!    `/etc/hosts` files make it, is skipped).
//! 5. The first non-loopback, non-link-local interface address (IPv4 first).
//! 6. Loopback: no other host can reach this one anyway.
//!
//! Only IPv4 candidates are taken for a process bound to `0.0.0.0`; one
//! bound to `[::]` takes either family.
//!
//! [`choose`] is the pure rule (unit-tested); [`executor_address`] and
//! [`driver_address`] gather the facts (route, host name, interfaces) and
//! apply it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::str::FromStr;

use datafusion::error::DataFusionError;

/// `HOST[:PORT]` as given to `--advertise`: a host name, an IPv4 address or
/// an IPv6 address (bracketed when a port follows: `[fd00::5]:7077`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl FromStr for HostPort {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            DataFusionError::Configuration(format!(
                "invalid advertised address '{s}': {why} (expected HOST[:PORT], e.g. \
                 node7.example.com, 10.0.0.5:7077 or [fd00::5]:7077)"
            ))
        };
        let s_trim = s.trim();
        if s_trim.contains("://") {
            return Err(bad("a host, not a URL"));
        }
        let (host, port) = if let Some(rest) = s_trim.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            if inside.parse::<Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address inside [ ]"));
            }
            match after {
                "" => (inside.to_string(), None),
                p => (
                    inside.to_string(),
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else if s_trim.parse::<Ipv6Addr>().is_ok() {
            // A bare IPv6 address has colons but no port.
            (s_trim.to_string(), None)
        } else {
            match s_trim.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (s_trim.to_string(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(bad("port 0 cannot be reached")),
                Ok(p) => Some(p),
                Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.is_unspecified() {
                return Err(bad(
                    "an unspecified address is not reachable from other hosts",
                ));
            }
        } else if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(bad("not a host name"));
        }
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = self.host.parse::<Ipv6Addr>().is_ok();
        match (v6, self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

/// What is known about this host when choosing (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The local address of a connection to the driver (executors only).
    pub route_to_driver: Option<IpAddr>,
    /// What the host's name resolves to.
    pub host_name_addresses: Vec<IpAddr>,
    /// The addresses of this host's interfaces that are up.
    pub interface_addresses: Vec<IpAddr>,
}

/// The address to advertise for a server bound to `bound`: the rule of the
/// module docs. Returns `host:port`.
pub fn choose(bound: SocketAddr, advertise: Option<&HostPort>, facts: &HostFacts) -> String {
    if let Some(a) = advertise {
        return HostPort {
            host: a.host.clone(),
            port: Some(a.port.unwrap_or(bound.port())),
        }
        .to_string();
    }
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let port = bound.port();
    let fits = |ip: &IpAddr| bound.is_ipv6() || ip.is_ipv4();
    let at = |ip: IpAddr| SocketAddr::new(ip, port).to_string();
    if let Some(ip) = facts.route_to_driver
        && !ip.is_unspecified()
        && !ip.is_loopback()
        && fits(&ip)
    {
        return at(ip);
    }
    let reachable = |ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified() && !link_local(ip);
    if let Some(ip) = facts.host_name_addresses.iter().find(|ip| {
        reachable(ip)
            && fits(ip)
            && (facts.interface_addresses.is_empty() || facts.interface_addresses.contains(ip))
    }) {
        return at(*ip);
    }
    let mut interfaces: Vec<&IpAddr> = facts
        .interface_addresses
        .iter()
        .filter(|ip| reachable(ip) && fits(ip))
        .collect();
    // IPv4 first, otherwise in the order the system lists them.
    interfaces.sort_by_key(|ip| !ip.is_ipv4());
    if let Some(ip) = interfaces.first() {
        return at(**ip);
    }
    at(match bound.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    })
}

fn link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// How long resolving the driver's host name may take.
const ROUTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Parses `--advertise`, if given.
pub fn parse_advertise(advertise: Option<&str>) -> Result<Option<HostPort>, DataFusionError> {
    advertise.map(str::parse).transpose()
}

/// The address an executor bound to `bound` advertises to the driver (and,
/// through it, to every executor that fetches its shuffle blocks and to the
/// driver reading results). `driver_url` is `http://HOST:PORT` or
/// `HOST:PORT`; HOST may be a name.
pub async fn executor_address(
    bound: SocketAddr,
    advertise: Option<&str>,
    driver_url: &str,
) -> Result<String, DataFusionError> {
    let advertise = parse_advertise(advertise)?;
    if advertise.is_some() || !bound.ip().is_unspecified() {
        return Ok(choose(bound, advertise.as_ref(), &HostFacts::default()));
    }
    let route = tokio::time::timeout(ROUTE_TIMEOUT, route_to(driver_url, bound));
    let route_to_driver = match route.await.unwrap_or_else(|_| {
        Err(DataFusionError::Configuration(format!(
            "resolving the driver's host took over {ROUTE_TIMEOUT:?}"
        )))
    }) {
        Ok(ip) => Some(ip),
        Err(e) => {
            tracing::warn!(
                driver_url,
                error = %e,
                "cannot find the local address towards the driver; advertising a host address"
            );
            None
        }
    };
    let facts = HostFacts {
        route_to_driver,
        ..host_facts().await
    };
    Ok(choose(bound, None, &facts))
}

/// The address a driver bound to `bound` advertises (the URL it prints for
/// executors and clients).
pub async fn driver_address(
    bound: SocketAddr,
    advertise: Option<&str>,
) -> Result<String, DataFusionError> {
    let advertise = parse_advertise(advertise)?;
    if advertise.is_some() || !bound.ip().is_unspecified() {
        return Ok(choose(bound, advertise.as_ref(), &HostFacts::default()));
    }
    Ok(choose(bound, None, &host_facts().await))
}

/// The host's name resolved, and its interface addresses.
async fn host_facts() -> HostFacts {
    let host_name_addresses = match host_name() {
        Some(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            match tokio::time::timeout(ROUTE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => vec![],
            }
        }
        None => vec![],
    };
    HostFacts {
        route_to_driver: None,
        host_name_addresses,
        interface_addresses: interface_addresses(),
    }
}

/// The local address the kernel picks for a connection to `url`'s host: a
/// UDP socket's `connect` does the route lookup without sending a packet,
/// so this works before the driver is up. Names are resolved.
pub async fn route_to(url: &str, bound: SocketAddr) -> Result<IpAddr, DataFusionError> {
    let (host, port) = url_host_port(url)?;
    let targets: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| DataFusionError::Configuration(format!("cannot resolve '{host}': {e}")))?
        .filter(|a| bound.is_ipv6() || a.is_ipv4())
        .collect();
    let mut last = format!("'{host}' has no usable address");
    for target in targets {
        let local: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let probe = UdpSocket::bind(local).and_then(|s| {
            s.connect(target)?;
            s.local_addr()
        });
        match probe {
            Ok(addr) if !addr.ip().is_unspecified() => return Ok(addr.ip()),
            Ok(_) => last = format!("no route to {target}"),
            Err(e) => last = format!("no route to {target}: {e}"),
        }
    }
    Err(DataFusionError::Configuration(last))
}

/// Host and port of `http://HOST:PORT[/...]` or `HOST:PORT`; the port
/// defaults to 80 for http and 443 for https.
fn url_host_port(url: &str) -> Result<(String, u16), DataFusionError> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let uri: tonic::codegen::http::Uri = full
        .parse()
        .map_err(|e| DataFusionError::Configuration(format!("invalid address '{url}': {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| DataFusionError::Configuration(format!("no host in '{url}'")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Ok((host, port))
}

/// This host's name (`gethostname`).
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The addresses of this host's interfaces that are up (`getifaddrs`).
fn interface_addresses() -> Vec<IpAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return vec![];
    }
    let mut out = vec![];
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive
        // until freeifaddrs; its ifa_addr, when not null, points to a
        // sockaddr of the family it names.
        let ifa = unsafe { &*cur };
        let up = ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
        if up && !ifa.ifa_addr.is_null() {
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn hp(s: &str) -> HostPort {
        s.parse().unwrap()
    }

    #[test]
    fn parses_host_port() {
        assert_eq!(
            hp("node7"),
            HostPort {
                host: "node7".into(),
                port: None
            }
        );
        assert_eq!(hp("node7.example.com:7077").port, Some(7077));
        assert_eq!(hp("10.0.0.5:80").host, "10.0.0.5");
        assert_eq!(hp("[fd00::5]:7077").host, "fd00::5");
        assert_eq!(hp("[fd00::5]:7077").port, Some(7077));
        assert_eq!(hp("fd00::5").port, None);
        assert_eq!(hp("[fd00::5]:7077").to_string(), "[fd00::5]:7077");
        for bad in [
            "",
            ":7077",
            "http://node7:7077",
            "node7:0",
            "node7:70000",
            "node7:x",
            "0.0.0.0",
            "[::]:7077",
            "[fd00::5",
            "[fd00::5]7077",
            "no de",
            "a/b",
        ] {
            let err = bad.parse::<HostPort>().unwrap_err().to_string();
            assert!(
                err.contains("invalid advertised address") && err.contains("HOST[:PORT]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn advertise_wins_and_keeps_the_bound_port_unless_given() {
        let facts = HostFacts {
            route_to_driver: Some(ip("10.0.0.9")),
            ..Default::default()
        };
        let bound = sa("0.0.0.0:4100");
        assert_eq!(choose(bound, Some(&hp("node7")), &facts), "node7:4100");
        assert_eq!(choose(bound, Some(&hp("node7:9000")), &facts), "node7:9000");
        assert_eq!(
            choose(bound, Some(&hp("fd00::5")), &facts),
            "[fd00::5]:4100"
        );
        // Even over a specific bound address (NAT, port forwarding).
        assert_eq!(
            choose(sa("10.0.0.9:4100"), Some(&hp("gw:80")), &facts),
            "gw:80"
        );
    }

    #[test]
    fn a_specific_bound_address_is_advertised_as_is() {
        let facts = HostFacts {
            route_to_driver: Some(ip("10.0.0.9")),
            interface_addresses: vec![ip("10.0.0.9")],
            ..Default::default()
        };
        assert_eq!(choose(sa("127.0.0.1:4100"), None, &facts), "127.0.0.1:4100");
        assert_eq!(choose(sa("[fd00::1]:4100"), None, &facts), "[fd00::1]:4100");
    }

    #[test]
    fn unspecified_takes_the_route_to_the_driver_first() {
        let facts = HostFacts {
            route_to_driver: Some(ip("10.77.0.3")),
            host_name_addresses: vec![ip("192.168.1.4")],
            interface_addresses: vec![ip("127.0.0.1"), ip("192.168.1.4"), ip("10.77.0.3")],
        };
        assert_eq!(choose(sa("0.0.0.0:4100"), None, &facts), "10.77.0.3:4100");
        // A driver on this host, reached over loopback: an address other
        // hosts' executors reach too (this one reaches it as well).
        let local = HostFacts {
            route_to_driver: Some(ip("127.0.0.1")),
            ..facts.clone()
        };
        assert_eq!(choose(sa("0.0.0.0:4100"), None, &local), "192.168.1.4:4100");
        let alone = HostFacts {
            route_to_driver: Some(ip("127.0.0.1")),
            host_name_addresses: vec![],
            interface_addresses: vec![ip("127.0.0.1")],
        };
        assert_eq!(choose(sa("0.0.0.0:4100"), None, &alone), "127.0.0.1:4100");
        // An IPv6 route does not fit an IPv4-only socket.
        let v6 = HostFacts {
            route_to_driver: Some(ip("fd00::3")),
            ..facts.clone()
        };
        assert_eq!(choose(sa("0.0.0.0:4100"), None, &v6), "192.168.1.4:4100");
        assert_eq!(choose(sa("[::]:4100"), None, &v6), "[fd00::3]:4100");
    }

    #[test]
    fn then_the_host_name_when_an_interface_has_its_address() {
        let facts = HostFacts {
            route_to_driver: None,
            host_name_addresses: vec![ip("127.0.1.1"), ip("192.168.1.4")],
            interface_addresses: vec![ip("127.0.0.1"), ip("10.77.0.2"), ip("192.168.1.4")],
        };
        assert_eq!(choose(sa("0.0.0.0:7077"), None, &facts), "192.168.1.4:7077");
        // A name resolving to loopback only (a common /etc/hosts) or to an
        // address of another host falls through to the interfaces.
        for names in [vec![ip("127.0.0.1")], vec![ip("192.168.9.9")]] {
            let f = HostFacts {
                host_name_addresses: names,
                ..facts.clone()
            };
            assert_eq!(choose(sa("0.0.0.0:7077"), None, &f), "10.77.0.2:7077");
        }
    }

    #[test]
    fn then_an_interface_ipv4_first_never_link_local() {
        let facts = HostFacts {
            route_to_driver: None,
            host_name_addresses: vec![],
            interface_addresses: vec![
                ip("::1"),
                ip("fe80::1"),
                ip("fd00::2"),
                ip("169.254.3.3"),
                ip("127.0.0.1"),
                ip("10.77.0.2"),
            ],
        };
        assert_eq!(choose(sa("[::]:7077"), None, &facts), "10.77.0.2:7077");
        let v6_only = HostFacts {
            interface_addresses: vec![ip("::1"), ip("fe80::1"), ip("fd00::2")],
            ..facts.clone()
        };
        assert_eq!(choose(sa("[::]:7077"), None, &v6_only), "[fd00::2]:7077");
        // Nothing but loopback: no other host can reach this one anyway.
        assert_eq!(choose(sa("0.0.0.0:7077"), None, &v6_only), "127.0.0.1:7077");
        assert_eq!(
            choose(sa("[::]:7077"), None, &HostFacts::default()),
            "[::1]:7077"
        );
    }

    #[test]
    fn url_hosts_and_ports() {
        assert_eq!(
            url_host_port("http://driver:7077").unwrap(),
            ("driver".into(), 7077)
        );
        assert_eq!(
            url_host_port("10.0.0.1:7077").unwrap(),
            ("10.0.0.1".into(), 7077)
        );
        assert_eq!(
            url_host_port("https://driver").unwrap(),
            ("driver".into(), 443)
        );
        assert_eq!(
            url_host_port("http://[fd00::1]:7077/").unwrap(),
            ("fd00::1".into(), 7077)
        );
        assert!(url_host_port("http://").is_err());
    }

    /// The real gatherers on this machine: with the driver on loopback (by
    /// IP or by the name `localhost`), an executor on every interface
    /// advertises an address that really reaches it, the same whatever
    /// the URL's spelling; an unspecified bind never advertises an
    /// unspecified address.
    #[tokio::test]
    async fn on_this_machine() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let mut seen = vec![];
        for url in [
            "http://127.0.0.1:7077",
            "http://localhost:7077",
            "localhost:7077",
        ] {
            let address = executor_address(bound, None, url).await.unwrap();
            let at: SocketAddr = address.parse().unwrap();
            assert!(!at.ip().is_unspecified(), "{url}: {address}");
            assert_eq!(at.port(), bound.port(), "{url}: {address}");
            std::net::TcpStream::connect_timeout(&at, std::time::Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{url}: {address} does not reach this host: {e}"));
            seen.push(address);
        }
        seen.dedup();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let bound = sa("0.0.0.0:4100");
        let driver = driver_address(sa("0.0.0.0:7077"), None).await.unwrap();
        let ip: SocketAddr = driver.parse().unwrap();
        assert!(!ip.ip().is_unspecified(), "{driver}");
        assert_eq!(ip.port(), 7077);
        assert_eq!(
            driver_address(sa("0.0.0.0:7077"), Some("node7"))
                .await
                .unwrap(),
            "node7:7077"
        );
        let err = executor_address(bound, Some("http://x:1"), "http://127.0.0.1:7077")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a URL"), "{err}");
        // A driver name that does not resolve: a host address instead (and
        // registering then fails with the driver's name in the error).
        let fallback = executor_address(bound, None, "http://no-such-host.invalid:7077")
            .await
            .unwrap();
        assert!(!fallback.starts_with("0.0.0.0"), "{fallback}");
    }
}
