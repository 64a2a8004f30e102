//! SASL GSSAPI (Kerberos v5, RFC 4752) through the system's GSS-API library (MIT krb5, via
//! the `libgssapi` crate; feature `gssapi`, which needs Debian's `libkrb5-dev` and
//! `libclang-dev` to build).
//!
//! ```no_run
//! # async fn f() -> zk_client::Result<()> {
//! use std::sync::Arc;
//! use zk_client::{Client, gssapi::Gssapi};
//! // Credentials come from the environment, as with every Kerberos program: the ticket cache
//! // (`KRB5CCNAME`, e.g. after `kinit`) or a client keytab (`KRB5_CLIENT_KTNAME`), and
//! // `KRB5_CONFIG` for the realm.
//! let client = Client::builder("zk1.example.com:2181,zk2.example.com:2181")
//!     .sasl(Arc::new(Gssapi::new()))
//!     .connect()
//!     .await?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! The server principal of a host is `zookeeper/<host>` (the host as written in the connection
//! string; krb5 canonicalises it as its `krb5.conf` says), or whatever
//! [`Gssapi::server_principal`] sets, as with the Java client's `zookeeper.server.principal`.
//!
//! ## Failover waits on no KDC
//! [`Gssapi`] obtains a service ticket for every server of the host list when a session starts
//! and whenever the list changes ([`SaslMechanism::prepare`], on a blocking thread), so the
//! ticket cache already holds the ticket a failover needs: the re-authentication with the next
//! server is local computation and two round trips to that server. Steps run on a blocking
//! thread (they may reach the KDC when a ticket is missing), never on the event loop.
//!
//! ## Errors
//! Missing, expired or unusable credentials, an unknown realm or client: [`SaslError::Credentials`]
//! (the session ends with `AuthFailed`). The KDC unreachable or a server principal the KDC does
//! not know: [`SaslError::Unavailable`] (next server, same session).

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL, OidSet};
use tracing::{debug, info};
use zk_session::sasl::{SaslClient, SaslError, SaslMechanism, SaslStep};

/// The Kerberos mechanism. See the module docs.
pub struct Gssapi {
    service: String,
    server_principal: Option<String>,
    client_principal: Option<String>,
    /// Principals whose service tickets were obtained by `prepare`.
    prepared: Mutex<HashSet<String>>,
}

impl fmt::Debug for Gssapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gssapi")
            .field("service", &self.service)
            .field("server_principal", &self.server_principal)
            .field("client_principal", &self.client_principal)
            .finish_non_exhaustive()
    }
}

impl Default for Gssapi {
    fn default() -> Self {
        Self::new()
    }
}

/// MIT krb5 error codes (the minor status) that decide how a failure is treated.
mod krb5 {
    /// `KRB5_KDC_UNREACH`: Cannot contact any KDC for requested realm.
    pub(super) const KDC_UNREACH: u32 = 0x96c7_3a9c;
    /// `KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN`: Server not found in Kerberos database.
    pub(super) const S_PRINCIPAL_UNKNOWN: u32 = 0x96c7_3a07;
    /// `KRB5_REALM_CANT_RESOLVE`: Cannot resolve network address for KDC in requested realm.
    pub(super) const REALM_CANT_RESOLVE: u32 = 0x96c7_3a9b;
    /// `KRB5_KDCREP_SKEW`: clock skew too great in KDC reply.
    pub(super) const KDCREP_SKEW: u32 = 0x96c7_3aa2;
}

impl Gssapi {
    /// Kerberos with the default credentials and server principals `zookeeper/<host>`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            service: "zookeeper".to_owned(),
            server_principal: None,
            client_principal: None,
            prepared: Mutex::new(HashSet::new()),
        }
    }

    /// The service part of the server principals (default `zookeeper`; the Java client's
    /// `zookeeper.sasl.client.username`).
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// One server principal for every host (e.g. `zookeeper/zk.example.com@EXAMPLE.COM`, the
    /// Java client's `zookeeper.server.principal`), instead of `<service>/<host>`.
    #[must_use]
    pub fn server_principal(mut self, principal: impl Into<String>) -> Self {
        self.server_principal = Some(principal.into());
        self
    }

    /// Authenticate as this principal (its tickets must be in the ticket cache collection, or
    /// its key in the client keytab) instead of the default one.
    #[must_use]
    pub fn client_principal(mut self, principal: impl Into<String>) -> Self {
        self.client_principal = Some(principal.into());
        self
    }

    /// The principal for `host`, as shown in logs, and its GSS name.
    fn target(&self, host: &str) -> Result<(String, Name), SaslError> {
        let (shown, name) = match &self.server_principal {
            Some(p) => (
                p.clone(),
                Name::new(p.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL)),
            ),
            None => {
                let hb = format!("{}@{host}", self.service);
                (
                    format!("{}/{host}", self.service),
                    Name::new(hb.as_bytes(), Some(&GSS_NT_HOSTBASED_SERVICE)),
                )
            }
        };
        let name = name.map_err(|e| classify(&e, "the server principal"))?;
        Ok((shown, name))
    }

    fn credentials(&self) -> Result<Cred, SaslError> {
        let mut mechs = OidSet::new().map_err(|e| classify(&e, "a mechanism set"))?;
        mechs
            .add(&GSS_MECH_KRB5)
            .map_err(|e| classify(&e, "a mechanism set"))?;
        let name = match &self.client_principal {
            Some(p) => Some(
                Name::new(p.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL))
                    .map_err(|e| classify(&e, "the client principal"))?,
            ),
            None => None,
        };
        Cred::acquire(name.as_ref(), None, CredUsage::Initiate, Some(&mechs))
            .map_err(|e| classify(&e, "acquiring Kerberos credentials"))
    }

    fn context(&self, host: &str) -> Result<(String, ClientCtx), SaslError> {
        let (shown, target) = self.target(host)?;
        Ok((shown, Self::context_for(target, self.credentials()?)))
    }

    fn context_for(target: Name, cred: Cred) -> ClientCtx {
        // Mutual authentication: the server proves it holds the service key. No delegation.
        let flags = CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG;
        ClientCtx::new(Some(cred), target, flags, Some(&GSS_MECH_KRB5))
    }
}

/// How a GSS-API failure is treated (see the module docs).
fn classify(e: &GssError, doing: &str) -> SaslError {
    let reason = format!("{doing}: {e}");
    let credentials = MajorFlags::GSS_S_NO_CRED
        | MajorFlags::GSS_S_CREDENTIALS_EXPIRED
        | MajorFlags::GSS_S_DEFECTIVE_CREDENTIAL
        | MajorFlags::GSS_S_BAD_NAME
        | MajorFlags::GSS_S_BAD_NAMETYPE
        | MajorFlags::GSS_S_UNAUTHORIZED;
    match e.minor {
        krb5::KDC_UNREACH | krb5::S_PRINCIPAL_UNKNOWN => SaslError::Unavailable(reason),
        krb5::REALM_CANT_RESOLVE | krb5::KDCREP_SKEW => SaslError::Credentials(reason),
        _ if e.major.intersects(credentials) => SaslError::Credentials(reason),
        // Another code from the library: its text says which; most are configuration or
        // credentials (expired tickets come as GSS_S_FAILURE with a krb5 minor).
        _ if e.major.contains(MajorFlags::GSS_S_FAILURE) => SaslError::Credentials(reason),
        _ => SaslError::Protocol(reason),
    }
}

impl SaslMechanism for Gssapi {
    fn name(&self) -> &'static str {
        "GSSAPI"
    }

    fn start(&self, server: &str) -> Result<Box<dyn SaslClient>, SaslError> {
        let (principal, ctx) = self.context(server)?;
        Ok(Box::new(GssapiClient {
            principal,
            ctx,
            stage: Stage::Start,
        }))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn prepare(&self, servers: &[String]) {
        // One credential for the whole list; principals already prepared are skipped before
        // anything touches the ticket cache.
        let mut cred: Option<Cred> = None;
        for server in servers {
            let Ok((principal, target)) = self.target(server) else {
                continue;
            };
            if let Ok(mut done) = self.prepared.lock()
                && !done.insert(principal.clone())
            {
                continue;
            }
            let result = match &cred {
                Some(c) => Ok(c.clone()),
                None => self.credentials(),
            }
            .and_then(|c| {
                cred = Some(c.clone());
                // The first step asks the KDC for the service ticket (unless cached) and
                // leaves it in the ticket cache; the context itself is thrown away.
                Self::context_for(target, c)
                    .step(None, None)
                    .map_err(|e| classify(&e, &principal))
            });
            match result {
                Ok(_) => debug!(%principal, "service ticket ready"),
                Err(e) => {
                    info!(%principal, error = %e, "service ticket not obtained ahead of need");
                    if let Ok(mut done) = self.prepared.lock() {
                        done.remove(&principal);
                    }
                }
            }
        }
    }
}

enum Stage {
    /// Nothing sent yet.
    Start,
    /// The AP-REQ and the empty token that asks for the security-layer offer were sent
    /// together: the server's AP-REP comes next (mutual authentication).
    ApRep,
    /// Established: the server's wrapped security-layer offer comes next.
    Layer,
    /// Our choice was sent (the last token).
    Done,
}

struct GssapiClient {
    principal: String,
    ctx: ClientCtx,
    stage: Stage,
}

impl SaslClient for GssapiClient {
    fn mechanism(&self) -> &'static str {
        "GSSAPI"
    }

    fn step(&mut self, server_token: Option<&[u8]>) -> Result<SaslStep, SaslError> {
        let doing = || format!("Kerberos with {}", self.principal);
        match self.stage {
            Stage::Start => {
                let out = self
                    .ctx
                    .step(None, None)
                    .map_err(|e| classify(&e, &doing()))?;
                let Some(ap_req) = out else {
                    return Err(SaslError::Protocol(format!(
                        "{}: no initial token",
                        doing()
                    )));
                };
                self.stage = Stage::ApRep;
                // ZooKeeper's server answers the AP-REQ with the AP-REP and the next (empty)
                // token with the security-layer offer: both go out at once, one round trip
                // saved. The AP-REP is still verified before anything else is sent.
                Ok(SaslStep::SendAll(vec![ap_req.to_vec(), Vec::new()]))
            }
            Stage::ApRep => {
                let out = self
                    .ctx
                    .step(server_token, None)
                    .map_err(|e| classify(&e, &doing()))?;
                if !self.ctx.is_complete() || out.is_some_and(|b| !b.is_empty()) {
                    return Err(SaslError::Protocol(format!(
                        "{}: the context needs more than one round trip",
                        doing()
                    )));
                }
                self.stage = Stage::Layer;
                Ok(SaslStep::Wait)
            }
            Stage::Layer => {
                let offer = self
                    .ctx
                    .unwrap(server_token.unwrap_or_default())
                    .map_err(|e| SaslError::Protocol(format!("{}: {e}", doing())))?;
                // RFC 4752 §3.1: one octet of offered layers, three of the largest message.
                if offer.len() != 4 || offer[0] & 0x01 == 0 {
                    return Err(SaslError::Protocol(
                        "the server does not offer SASL GSSAPI without a security layer".into(),
                    ));
                }
                // No security layer (1), no buffer, no authorization id (the server then
                // authorizes the authenticated principal itself).
                let reply = self
                    .ctx
                    .wrap(false, &[0x01, 0, 0, 0])
                    .map_err(|e| SaslError::Protocol(format!("{}: {e}", doing())))?;
                self.stage = Stage::Done;
                // The server was verified (AP-REP): its answer to this token carries nothing
                // but success, so the session's requests may follow right behind it.
                Ok(SaslStep::SendLast(reply.to_vec()))
            }
            Stage::Done => Err(SaslError::Protocol(format!(
                "{}: a token after the last one",
                doing()
            ))),
        }
    }
}
