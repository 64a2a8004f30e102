//! `zk-connstr` on its own: parse ZooKeeper connection strings, read hosts and chroot, map
//! paths through the chroot, and get typed errors with the byte offset of each problem
//! (strings the Java client accepts and then misreads). No server, no I/O.
//!
//! ```text
//! cargo run --example connstr [CONNECTION-STRING...]
//! ```

use zk_failover::connstr::{ConnectString, Host, validate_path};

fn show(input: &str) {
    match ConnectString::parse(input) {
        Ok(cs) => {
            println!("{input:?}\n  canonical: {cs}");
            for spec in cs.hosts() {
                let kind = match &spec.host {
                    Host::Name(_) => "DNS name, resolved on every connection attempt",
                    _ => "IP literal",
                };
                println!(
                    "  host {} port {} ({kind}; TLS name {:?})",
                    spec.host,
                    spec.port,
                    spec.server_name()
                );
            }
            if let Some(chroot) = cs.chroot() {
                let server_path = chroot.prefix("/config");
                println!(
                    "  chroot {}: client /config <-> server {server_path} (strip: {:?})",
                    chroot.as_str(),
                    chroot.strip(&server_path)
                );
            }
        }
        Err(e) => {
            // The offset points at the problem: draw a caret under it.
            println!("{input:?}");
            println!("{}^ {e}", " ".repeat(e.offset + 1));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        args.iter().for_each(|a| show(a));
        return;
    }
    for input in [
        "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183",
        " zk1.example.com, 10.0.0.2:2182 ,[fe80::1%eth0]:2183/app/prod",
        "zk1,zk2,zk3/",
        // Each of these is accepted by the Java client and then misread:
        "::1",
        "a:1,,b:2",
        "h:0",
        "h1:2181/a,h2:2181",
        "256.1.1.1:2181",
        "zk1:2181/app/",
    ] {
        show(input);
    }
    for path in ["/app/config", "/app//config", "/app/./x", "relative"] {
        println!("validate_path({path:?}) = {:?}", validate_path(path));
    }
}
