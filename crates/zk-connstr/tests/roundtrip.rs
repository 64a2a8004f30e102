//! Property tests: no panic on any input, and `parse(display(x)) == x`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use zk_connstr::{Chroot, ConnectString, Host, HostSpec, validate_path};

fn name() -> impl Strategy<Value = String> {
    // The last label starts with a letter, so it is never numeric.
    (
        prop::collection::vec("[A-Za-z0-9_-]{1,12}", 0..4),
        "[A-Za-z_][A-Za-z0-9_-]{0,11}",
        any::<bool>(),
    )
        .prop_map(|(mut labels, last, dot)| {
            labels.push(last);
            let mut name = labels.join(".");
            if dot {
                name.push('.');
            }
            name
        })
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        name().prop_map(Host::Name),
        any::<u32>().prop_map(|v| Host::Ipv4(Ipv4Addr::from(v))),
        (any::<u128>(), prop::option::of("[A-Za-z0-9._-]{1,16}")).prop_map(|(v, zone)| {
            Host::Ipv6 {
                addr: Ipv6Addr::from(v),
                zone,
            }
        }),
    ]
}

fn host_spec() -> impl Strategy<Value = HostSpec> {
    (host(), 1..=u16::MAX).prop_map(|(host, port)| HostSpec { host, port })
}

fn chroot() -> impl Strategy<Value = Chroot> {
    // Segments from a mix of ASCII, spaces, dots, colons and BMP characters the server allows.
    prop::collection::vec("[a-zA-Z0-9 ._:\\-é中\u{a0}\u{fffd}]{1,8}", 1..4)
        .prop_filter_map("valid chroot", |segments| {
            Chroot::new(&format!("/{}", segments.join("/"))).ok()
        })
}

fn connect_string() -> impl Strategy<Value = ConnectString> {
    (
        prop::collection::vec(host_spec(), 1..6),
        prop::option::of(chroot()),
    )
        .prop_map(|(hosts, chroot)| ConnectString::new(hosts, chroot).unwrap())
}

/// Strings built from the characters that matter to the parser.
fn connstr_like() -> impl Strategy<Value = String> {
    "[a-fzA-F0-9:\\[\\]%,/. \t_\\-x\u{0}\u{1}é😀]{0,40}"
}

fn check_any(s: &str) {
    match ConnectString::parse(s) {
        Ok(cs) => {
            let canonical = cs.to_string();
            assert_eq!(ConnectString::parse(&canonical), Ok(cs));
        }
        Err(e) => {
            assert!(e.offset <= s.len(), "{s:?}: {e}");
            assert!(s.is_char_boundary(e.offset), "{s:?}: {e}");
        }
    }
    zk_connstr::fuzzing::connstr(s.as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_parses_back(cs in connect_string()) {
        let text = cs.to_string();
        prop_assert_eq!(ConnectString::parse(&text), Ok(cs.clone()));
        // Whitespace around entries and the whole string does not change the value.
        let spaced = format!("  {}  ", text.replace(',', " , "));
        prop_assert_eq!(ConnectString::parse(&spaced), Ok(cs));
    }

    #[test]
    fn host_spec_display_parses_back(spec in host_spec()) {
        prop_assert_eq!(HostSpec::parse(&spec.to_string()), Ok(spec));
    }

    #[test]
    fn chroot_prefix_strip_inverse(c in chroot(), p in chroot()) {
        prop_assert_eq!(validate_path(c.as_str()), Ok(()));
        let full = c.prefix(p.as_str());
        prop_assert_eq!(c.strip(&full), Some(p.as_str()));
        let root = c.prefix("/");
        prop_assert_eq!(c.strip(&root), Some("/"));
    }

    #[test]
    fn no_panic_on_arbitrary_strings(s in any::<String>()) {
        check_any(&s);
    }

    #[test]
    fn no_panic_on_connstr_like_strings(s in connstr_like()) {
        check_any(&s);
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        zk_connstr::fuzzing::connstr(&bytes);
    }

    #[test]
    fn validate_path_agrees_with_chroot(s in "/[a-z./\u{0}\u{1} ,]{0,12}") {
        let valid = validate_path(&s).is_ok();
        match Chroot::new(&s) {
            Ok(_) => prop_assert!(valid),
            Err(_) => prop_assert!(!valid || s == "/" || s.contains(',') || s.ends_with(' ')),
        }
    }
}
