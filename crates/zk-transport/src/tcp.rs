//! Plain TCP.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::{BoxStream, ConnectError, Connector, Target};

/// Opens plain TCP connections.
///
/// `TCP_NODELAY` is on by default (ZooKeeper requests are small and latency-bound). Keepalive and
/// `TCP_USER_TIMEOUT` are off by default: the session layer detects dead servers with pings,
/// these are extra safety nets for idle connections and unacknowledged writes.
///
/// ```
/// use std::time::Duration;
/// use zk_transport::TcpConnector;
///
/// let tcp = TcpConnector::new()
///     .keepalive(Some(Duration::from_secs(10)))
///     .user_timeout(Some(Duration::from_secs(5)));
/// assert!(tcp.is_nodelay());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConnector {
    nodelay: bool,
    keepalive: Option<Duration>,
    user_timeout: Option<Duration>,
}

impl Default for TcpConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpConnector {
    /// A connector with `TCP_NODELAY` on, keepalive and `TCP_USER_TIMEOUT` off.
    #[must_use]
    pub fn new() -> Self {
        Self {
            nodelay: true,
            keepalive: None,
            user_timeout: None,
        }
    }

    /// Sets `TCP_NODELAY` (default: on).
    #[must_use]
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Enables TCP keepalive with this idle time before the first probe (and the same interval
    /// between probes where the platform allows), or disables it with `None` (the default).
    #[must_use]
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Sets `TCP_USER_TIMEOUT`: how long transmitted data may stay unacknowledged before the
    /// kernel drops the connection. Linux/Android only; ignored (with a debug log) elsewhere.
    /// `None` (the default) leaves the system default.
    #[must_use]
    pub fn user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.user_timeout = timeout;
        self
    }

    /// Whether `TCP_NODELAY` will be set.
    #[must_use]
    pub fn is_nodelay(&self) -> bool {
        self.nodelay
    }

    /// The configured keepalive idle time.
    #[must_use]
    pub fn keepalive_idle(&self) -> Option<Duration> {
        self.keepalive
    }

    /// The configured `TCP_USER_TIMEOUT`.
    #[must_use]
    pub fn user_timeout_value(&self) -> Option<Duration> {
        self.user_timeout
    }

    /// Connects within `timeout` and returns the concrete `TcpStream` with the socket options
    /// applied.
    ///
    /// # Errors
    ///
    /// [`ConnectError::TimedOut`] when the deadline passes, otherwise the classified I/O error
    /// (see [`ConnectError::from_io_error`]).
    pub async fn connect_tcp(
        &self,
        target: &Target,
        timeout: Duration,
    ) -> Result<TcpStream, ConnectError> {
        match tokio::time::timeout(timeout, self.connect_tcp_inner(target)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                tracing::debug!(addr = %target.addr, ?timeout, "tcp connect timed out");
                Err(ConnectError::TimedOut)
            }
        }
    }

    /// Connects without a deadline; callers wrap it in their own timeout.
    pub(crate) async fn connect_tcp_inner(
        &self,
        target: &Target,
    ) -> Result<TcpStream, ConnectError> {
        let started = Instant::now();
        let stream = TcpStream::connect(target.addr).await.map_err(|err| {
            let classified = ConnectError::from_io_error(&err);
            tracing::debug!(addr = %target.addr, error = %err, "tcp connect failed");
            classified
        })?;
        self.apply_options(&stream)?;
        tracing::debug!(
            addr = %target.addr,
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "tcp connected"
        );
        Ok(stream)
    }

    fn apply_options(&self, stream: &TcpStream) -> Result<(), ConnectError> {
        stream.set_nodelay(self.nodelay)?;
        let sock = socket2::SockRef::from(stream);
        if let Some(idle) = self.keepalive {
            let params = socket2::TcpKeepalive::new().with_time(idle);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "windows"
            ))]
            let params = params.with_interval(idle);
            sock.set_tcp_keepalive(&params)?;
        }
        if let Some(user_timeout) = self.user_timeout {
            set_user_timeout(&sock, user_timeout)?;
        }
        Ok(())
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn set_user_timeout(sock: &socket2::SockRef<'_>, timeout: Duration) -> std::io::Result<()> {
    sock.set_tcp_user_timeout(Some(timeout))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn set_user_timeout(_sock: &socket2::SockRef<'_>, timeout: Duration) -> std::io::Result<()> {
    tracing::debug!(
        ?timeout,
        "TCP_USER_TIMEOUT is not supported on this platform; ignored"
    );
    Ok(())
}

#[async_trait::async_trait]
impl Connector for TcpConnector {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        let stream = self.connect_tcp(target, timeout).await?;
        Ok(Box::new(stream))
    }
}
