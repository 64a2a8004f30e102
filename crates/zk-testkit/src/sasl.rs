//! SASL on the servers: JAAS `DigestLoginModule` users, or Kerberos through a [`Kdc`] of the
//! test kit, with authentication optionally enforced.
//!
//! [`EnsembleBuilder::sasl`](crate::EnsembleBuilder::sasl) writes the JAAS file into the
//! ensemble's directory, points every JVM at it (`java.security.auth.login.config`, and for
//! Kerberos `java.security.krb5.conf`), and adds to `zoo.cfg`:
//! `authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider` and, when
//! enforced, `enforce.auth.enabled=true` with `enforce.auth.schemes=sasl` (ZooKeeper 3.8
//! turns unknown `zoo.cfg` keys into `zookeeper.*` system properties).

use std::path::{Path, PathBuf};

use crate::kdc::Kdc;

/// How the servers authenticate clients with SASL.
#[derive(Debug, Clone)]
pub struct SaslServer {
    kind: Kind,
    enforce: bool,
}

#[derive(Clone)]
enum Kind {
    Digest(Vec<(String, String)>),
    Kerberos {
        keytab: PathBuf,
        principal: String,
        krb5_conf: PathBuf,
    },
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The passwords stay out.
            Self::Digest(users) => f
                .debug_tuple("Digest")
                .field(&users.iter().map(|u| &u.0).collect::<Vec<_>>())
                .finish(),
            Self::Kerberos { principal, .. } => f
                .debug_struct("Kerberos")
                .field("principal", principal)
                .finish(),
        }
    }
}

impl SaslServer {
    /// DIGEST-MD5 with these users (name, password) in the JAAS `Server` section.
    #[must_use]
    pub fn digest(users: &[(&str, &str)]) -> Self {
        Self {
            kind: Kind::Digest(
                users
                    .iter()
                    .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                    .collect(),
            ),
            enforce: false,
        }
    }

    /// Kerberos (GSSAPI) with the KDC's server principal and keytab
    /// ([`Kdc::server_principal`], [`Kdc::server_keytab`]).
    #[must_use]
    pub fn kerberos(kdc: &Kdc) -> Self {
        Self {
            kind: Kind::Kerberos {
                keytab: kdc.server_keytab(),
                principal: kdc.server_principal(),
                krb5_conf: kdc.krb5_conf(),
            },
            enforce: false,
        }
    }

    /// Require SASL from every client (`enforce.auth.enabled=true`,
    /// `enforce.auth.schemes=sasl`): any other first request is answered with
    /// `SessionClosedRequireSaslAuth` and the connection closed.
    #[must_use]
    pub const fn enforce(mut self, on: bool) -> Self {
        self.enforce = on;
        self
    }

    pub(crate) fn jaas(&self) -> String {
        match &self.kind {
            Kind::Digest(users) => {
                let mut s = String::from(
                    "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required",
                );
                for (u, p) in users {
                    s.push_str(&format!("\n  user_{u}=\"{p}\""));
                }
                s.push_str(";\n};\n");
                s
            }
            Kind::Kerberos {
                keytab, principal, ..
            } => format!(
                "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                 useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
                 isInitiator=false\n  principal=\"{principal}\";\n}};\n",
                keytab.display()
            ),
        }
    }

    pub(crate) fn jvm_flags(&self, jaas: &Path) -> Vec<String> {
        let mut flags = vec![format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        )];
        if let Kind::Kerberos { krb5_conf, .. } = &self.kind {
            flags.push(format!("-Djava.security.krb5.conf={}", krb5_conf.display()));
            // The JDK's default replay cache is a file in the system's temp dir: stay inside
            // ours (every failover builds a fresh authenticator, so nothing is replayed).
            flags.push("-Dsun.security.krb5.rcache=none".to_owned());
        }
        flags
    }

    pub(crate) fn config(&self) -> Vec<(String, String)> {
        let mut c = vec![(
            "authProvider.sasl".to_owned(),
            "org.apache.zookeeper.server.auth.SASLAuthenticationProvider".to_owned(),
        )];
        if self.enforce {
            c.push(("enforce.auth.enabled".to_owned(), "true".to_owned()));
            c.push(("enforce.auth.schemes".to_owned(), "sasl".to_owned()));
        }
        c
    }
}
