//! Table-driven cases: valid strings with their canonical form, invalid strings with the
//! expected error kind and byte offset.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::net::{Ipv4Addr, Ipv6Addr};

use zk_connstr::{
    BuildError, Chroot, ConnectString, Host, HostSpec, ParseError, ParseErrorKind as K, PathError,
};

/// (input, canonical form).
const VALID: &[(&str, &str)] = &[
    ("zk1", "zk1:2181"),
    ("zk1:2182", "zk1:2182"),
    ("zk1:2181,zk2:2182,zk3", "zk1:2181,zk2:2182,zk3:2181"),
    (" zk1 , zk2 ", "zk1:2181,zk2:2181"),
    ("\tzk1:1\r\n", "zk1:1"),
    ("127.0.0.1", "127.0.0.1:2181"),
    ("10.0.0.1:65535", "10.0.0.1:65535"),
    ("0.0.0.0:1", "0.0.0.0:1"),
    ("255.255.255.255:2181", "255.255.255.255:2181"),
    ("[::1]", "[::1]:2181"),
    ("[::1]:2182", "[::1]:2182"),
    ("[::]:1", "[::]:1"),
    ("[fe80::1%eth0]:2181", "[fe80::1%eth0]:2181"),
    ("[FE80:0:0:0:0:0:0:1]", "[fe80::1]:2181"),
    ("[fe80::1%25]", "[fe80::1%25]:2181"),
    ("[fe80::a%en0.1_x-y]:3", "[fe80::a%en0.1_x-y]:3"),
    ("[::ffff:1.2.3.4]:5", "[::ffff:1.2.3.4]:5"),
    ("[2001:db8:0:0:1:0:0:1]", "[2001:db8::1:0:0:1]:2181"),
    ("zk1/app", "zk1:2181/app"),
    ("zk1:2181/", "zk1:2181"),
    ("zk1/app/sub", "zk1:2181/app/sub"),
    ("zk1/a b", "zk1:2181/a b"),
    ("zk1/app \t", "zk1:2181/app"),
    ("zk1 ,zk2/app", "zk1:2181,zk2:2181/app"),
    ("zk1:2181 /app", "zk1:2181/app"),
    ("zk1,zk1", "zk1:2181,zk1:2181"),
    ("ZK1.Example.COM", "ZK1.Example.COM:2181"),
    ("zk1.example.com.", "zk1.example.com.:2181"),
    ("my_host-1", "my_host-1:2181"),
    ("-weird-", "-weird-:2181"),
    ("zk1:002181", "zk1:2181"),
    ("a.b.c.d.e:1", "a.b.c.d.e:1"),
    ("1a.example:9", "1a.example:9"),
    ("10.0.0.1x", "10.0.0.1x:2181"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example:2181"),
    ("zk1/é", "zk1:2181/é"),
    ("zk1/...", "zk1:2181/..."),
    ("zk1/.a/a./..b", "zk1:2181/.a/a./..b"),
    ("zk1/a:b", "zk1:2181/a:b"),
    (
        "localhost:2181, [::1]:2182 ,127.0.0.1:2183/zk",
        "localhost:2181,[::1]:2182,127.0.0.1:2183/zk",
    ),
];

fn invalid() -> Vec<(&'static str, K, usize)> {
    let port = |text: &str| K::InvalidPort {
        text: text.to_owned(),
    };
    vec![
        // Nothing to parse.
        ("", K::Empty, 0),
        ("   ", K::Empty, 0),
        (",", K::NoHost, 0),
        (" , ", K::NoHost, 1),
        ("/app", K::NoHost, 0),
        (",/app", K::NoHost, 0),
        ("  ,, /app", K::NoHost, 2),
        // Empty hosts and entries.
        (":2181", K::EmptyHost, 0),
        ("a:1, :2181", K::EmptyHost, 5),
        ("a:1,,b:2", K::EmptyEntry, 4),
        ("a:1,", K::EmptyEntry, 4),
        ("a:1,/app", K::EmptyEntry, 4),
        (",a:1", K::EmptyEntry, 0),
        ("a, ,b", K::EmptyEntry, 2),
        ("  h:1,,x", K::EmptyEntry, 6),
        // IPv6 without brackets (the Java client makes `::1` host ":" port 1).
        ("::1", K::UnbracketedIpv6, 0),
        ("fe80::1:2181", K::UnbracketedIpv6, 0),
        ("2001:db8::1", K::UnbracketedIpv6, 0),
        ("h,fe80::1%eth0:2181", K::UnbracketedIpv6, 2),
        ("::ffff:1.2.3.4", K::UnbracketedIpv6, 0),
        // Ports.
        ("h:0", K::PortOutOfRange, 2),
        ("h:65536", K::PortOutOfRange, 2),
        ("h:99999999999999999999999", K::PortOutOfRange, 2),
        ("h:", port(""), 2),
        ("h:x", port("x"), 2),
        ("h:+1", port("+1"), 2),
        ("h:-1", port("-1"), 2),
        ("h: 1", port(" 1"), 2),
        ("h:1 2", port("1 2"), 2),
        ("h:1:2", port("1:2"), 2),
        ("h:0x10", port("0x10"), 2),
        ("a,bb:/x", port(""), 5),
        // Chroot placement.
        ("h1:2181/a,h2:2181", K::CommaAfterChroot, 9),
        ("h/a/b,c", K::CommaAfterChroot, 5),
        ("h:1/a,", K::CommaAfterChroot, 5),
        // Brackets.
        ("[::1", K::UnclosedBracket, 0),
        ("a,[fe80::1%eth0:2181", K::UnclosedBracket, 2),
        ("[::1]x", K::UnexpectedAfterBracket, 5),
        ("[::1] :2181", K::UnexpectedAfterBracket, 5),
        ("[::1]]", K::UnexpectedAfterBracket, 5),
        ("[::1]:", port(""), 6),
        ("[::1]:0", K::PortOutOfRange, 6),
        ("[]", K::InvalidIpv6, 1),
        ("[1.2.3.4]", K::InvalidIpv6, 1),
        ("[zk1]:2181", K::InvalidIpv6, 1),
        ("[ ::1]", K::InvalidIpv6, 1),
        ("[fe80::1%]", K::InvalidZone, 9),
        ("[fe80::1%eth 0]", K::InvalidZone, 12),
        ("[fe80::1%eth0%1]", K::InvalidZone, 13),
        // Numeric names that are not IPv4 addresses.
        ("256.1.1.1", K::InvalidIpv4, 0),
        ("1.2.3", K::InvalidIpv4, 0),
        ("010.0.0.1", K::InvalidIpv4, 0),
        ("0x7f.1", K::InvalidIpv4, 0),
        ("0x7f000001", K::InvalidIpv4, 0),
        ("10", K::InvalidIpv4, 0),
        ("host.123:2181", K::InvalidIpv4, 0),
        ("1.2.3.4.", K::InvalidIpv4, 0),
        ("1.2.3.4.5", K::InvalidIpv4, 0),
        // Host name characters and shape.
        ("a b", K::InvalidHostName, 1),
        ("h :2181", K::InvalidHostName, 1),
        ("h\t:1", K::InvalidHostName, 1),
        ("zk!1", K::InvalidHostName, 2),
        ("zké", K::InvalidHostName, 2),
        ("zk1]", K::InvalidHostName, 3),
        ("user@zk1", K::InvalidHostName, 4),
        ("a..b", K::EmptyLabel, 2),
        (".a", K::EmptyLabel, 0),
        ("a.b..", K::EmptyLabel, 4),
        (".", K::EmptyLabel, 0),
        // Chroot path rules.
        ("h/app/", K::InvalidChroot(PathError::TrailingSlash), 5),
        ("h//", K::InvalidChroot(PathError::TrailingSlash), 2),
        (
            "h/a//b",
            K::InvalidChroot(PathError::EmptySegment { offset: 3 }),
            4,
        ),
        (
            "h:1/a/../b",
            K::InvalidChroot(PathError::RelativeSegment { offset: 3 }),
            6,
        ),
        (
            "h/.",
            K::InvalidChroot(PathError::RelativeSegment { offset: 1 }),
            2,
        ),
        (
            "h/a\0",
            K::InvalidChroot(PathError::NulCharacter { offset: 2 }),
            3,
        ),
        (
            "h/a\u{1}",
            K::InvalidChroot(PathError::ForbiddenCharacter {
                offset: 2,
                ch: '\u{1}',
            }),
            3,
        ),
        (
            "h/app\n/x",
            K::InvalidChroot(PathError::ForbiddenCharacter {
                offset: 4,
                ch: '\n',
            }),
            5,
        ),
        (
            "h/😀",
            K::InvalidChroot(PathError::ForbiddenCharacter {
                offset: 1,
                ch: '😀',
            }),
            2,
        ),
        (
            " h/x\u{e000}",
            K::InvalidChroot(PathError::ForbiddenCharacter {
                offset: 2,
                ch: '\u{e000}',
            }),
            4,
        ),
    ]
}

#[test]
fn valid_cases_parse_to_their_canonical_form() {
    for &(input, canonical) in VALID {
        let cs = ConnectString::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
        assert_eq!(cs.to_string(), canonical, "canonical form of {input:?}");
        let again: ConnectString = canonical.parse().unwrap();
        assert_eq!(again, cs, "{canonical:?} parses back");
        assert_eq!(again.to_string(), canonical);
    }
}

#[test]
fn invalid_cases_report_kind_and_offset() {
    let cases = invalid();
    for (input, kind, offset) in &cases {
        let err = ConnectString::parse(input)
            .err()
            .unwrap_or_else(|| panic!("{input:?} should be rejected"));
        assert_eq!(
            (&err.kind, err.offset),
            (kind, *offset),
            "error for {input:?}: {err}"
        );
        assert!(err.offset <= input.len());
        assert!(input.is_char_boundary(err.offset));
    }
}

#[test]
fn table_is_large_enough() {
    assert!(VALID.len() + invalid().len() >= 60);
}

#[test]
fn long_names() {
    let label63 = "a".repeat(63);
    let name253 = format!("{0}.{0}.{0}.{1}", label63, "b".repeat(61));
    assert_eq!(name253.len(), 253);
    let cs = ConnectString::parse(&format!("{name253}:1")).unwrap();
    assert_eq!(cs.hosts()[0].host, Host::Name(name253.clone()));
    let err = ConnectString::parse(&format!("{name253}b")).unwrap_err();
    assert_eq!((err.kind, err.offset), (K::HostNameTooLong, 0));
    let err = ConnectString::parse(&format!("x,{}", "a".repeat(64))).unwrap_err();
    assert_eq!((err.kind, err.offset), (K::LabelTooLong, 2));
    let err = ConnectString::parse(&format!("[fe80::1%{}]", "z".repeat(65))).unwrap_err();
    assert_eq!((err.kind, err.offset), (K::InvalidZone, 9));
}

#[test]
fn parsed_values() {
    let cs = ConnectString::parse("zk1:1,10.1.2.3,[fe80::1%eth0]:3/app").unwrap();
    assert_eq!(
        cs.hosts(),
        &[
            HostSpec {
                host: Host::Name("zk1".into()),
                port: 1
            },
            HostSpec {
                host: Host::Ipv4(Ipv4Addr::new(10, 1, 2, 3)),
                port: 2181
            },
            HostSpec {
                host: Host::Ipv6 {
                    addr: "fe80::1".parse::<Ipv6Addr>().unwrap(),
                    zone: Some("eth0".into())
                },
                port: 3
            },
        ]
    );
    assert_eq!(cs.chroot(), Some(&Chroot::new("/app").unwrap()));
    let (hosts, chroot) = cs.into_parts();
    assert_eq!(hosts.len(), 3);
    assert_eq!(chroot.unwrap().as_str(), "/app");
}

#[test]
fn error_messages() {
    let msg = |s: &str| ConnectString::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("::1"),
        "at byte 0: IPv6 addresses must be written in brackets, as in [::1]:2181"
    );
    assert_eq!(
        msg("h:x"),
        "at byte 2: invalid port \"x\": expected a decimal number from 1 to 65535"
    );
    assert_eq!(
        msg("h/a//b"),
        "at byte 4: invalid chroot: empty node name (two consecutive '/') at byte 3"
    );
    assert_eq!(
        msg("h1:2181/a,h2:2181"),
        "at byte 9: comma after the chroot: the chroot must come after all hosts"
    );
}

#[test]
fn server_names_and_socket_addrs() {
    let cs = ConnectString::parse("Zk1.Example.:1,10.0.0.1:2,[fe80::1%2]:3,[::1%lo]:4").unwrap();
    let names: Vec<String> = cs.hosts().iter().map(HostSpec::server_name).collect();
    assert_eq!(names, ["Zk1.Example", "10.0.0.1", "fe80::1", "::1"]);
    let addrs: Vec<Option<String>> = cs
        .hosts()
        .iter()
        .map(|h| h.socket_addr().map(|a| a.to_string()))
        .collect();
    assert_eq!(
        addrs,
        [
            None,
            Some("10.0.0.1:2".into()),
            Some("[fe80::1%2]:3".into()),
            None
        ]
    );
}

#[test]
fn host_spec_parse() {
    assert_eq!(HostSpec::parse("h").unwrap().to_string(), "h:2181");
    let empty: ParseError = HostSpec::parse("").unwrap_err();
    assert_eq!((empty.offset, empty.kind), (0, K::Empty));
    assert_eq!(HostSpec::parse(" h").unwrap_err().kind, K::InvalidHostName);
    assert_eq!(HostSpec::parse("a,b").unwrap_err().kind, K::InvalidHostName);
    assert_eq!(HostSpec::parse("a/b").unwrap_err().offset, 1);
}

#[test]
fn build_checks_hosts() {
    let good = HostSpec::parse("h:1").unwrap();
    assert_eq!(ConnectString::new(vec![], None), Err(BuildError::NoHosts));
    assert_eq!(
        ConnectString::new(
            vec![
                good.clone(),
                HostSpec {
                    host: Host::Name("bad name".into()),
                    port: 1
                }
            ],
            None
        ),
        Err(BuildError::InvalidHost {
            index: 1,
            kind: K::InvalidHostName
        })
    );
    assert_eq!(
        ConnectString::new(
            vec![HostSpec {
                host: Host::Name("1.2.3.4".into()),
                port: 1
            }],
            None
        ),
        Err(BuildError::InvalidHost {
            index: 0,
            kind: K::InvalidIpv4
        })
    );
    assert_eq!(
        ConnectString::new(
            vec![HostSpec {
                host: Host::Ipv4(Ipv4Addr::LOCALHOST),
                port: 0
            }],
            None
        ),
        Err(BuildError::InvalidHost {
            index: 0,
            kind: K::PortOutOfRange
        })
    );
    assert_eq!(
        ConnectString::new(
            vec![HostSpec {
                host: Host::Ipv6 {
                    addr: Ipv6Addr::LOCALHOST,
                    zone: Some(String::new())
                },
                port: 1
            }],
            None
        ),
        Err(BuildError::InvalidHost {
            index: 0,
            kind: K::InvalidZone
        })
    );
    let cs =
        ConnectString::new(vec![good.clone(), good], Some(Chroot::new("/a").unwrap())).unwrap();
    assert_eq!(cs.to_string(), "h:1,h:1/a");
    assert_eq!(cs.to_string().parse::<ConnectString>(), Ok(cs));
}
