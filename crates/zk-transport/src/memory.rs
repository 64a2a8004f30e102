//! An in-memory transport with scriptable failures, for deterministic tests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use crate::{BoxStream, ConnectError, Connector, Target};

/// What a [`MemoryConnector`] does when asked to connect to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryBehaviour {
    /// Open a pipe and hand the server end to the [`MemoryListener`] (the default).
    Accept,
    /// Like `Accept` after this delay (counted against the connect deadline).
    AcceptAfter(Duration),
    /// Fail at once with [`ConnectError::Refused`], like a closed port.
    Refuse,
    /// Never answer: the connect hangs until its deadline and fails with
    /// [`ConnectError::TimedOut`], like a blackholed host.
    Hang,
    /// Fail at once with this error.
    Fail(ConnectError),
}

/// Pipe-based [`Connector`]: every accepted connect creates a [`tokio::io::duplex`] pair whose
/// server end comes out of the paired [`MemoryListener`], tagged with the [`Target`] the client
/// asked for, so one listener can play a whole ensemble.
///
/// Failures are scripted per address: a standing behaviour ([`set_behaviour`](Self::set_behaviour),
/// [`refuse`](Self::refuse), [`hang`](Self::hang)) and a queue of one-shot behaviours consumed by
/// the next attempts ([`script`](Self::script)). `Hang` and `AcceptAfter` use tokio's timer, so
/// under `#[tokio::test(start_paused = true)]` they run in virtual time.
///
/// Clones share the script, the attempt log and the listener.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use zk_transport::{ConnectError, Connector, MemoryConnector, Target};
///
/// let (connector, mut listener) = MemoryConnector::new();
/// let up = Target::new("10.0.0.1:2181".parse().unwrap(), "zk1");
/// let down = Target::new("10.0.0.2:2181".parse().unwrap(), "zk2");
/// connector.refuse(down.addr);
///
/// let err = connector.connect(&down, Duration::from_secs(1)).await.err();
/// assert_eq!(err, Some(ConnectError::Refused));
///
/// let mut client = connector.connect(&up, Duration::from_secs(1)).await.unwrap();
/// let (target, mut server) = listener.accept().await.unwrap();
/// assert_eq!(target, up);
/// client.write_all(b"ping").await.unwrap();
/// let mut buf = [0u8; 4];
/// server.read_exact(&mut buf).await.unwrap();
/// assert_eq!(&buf, b"ping");
/// assert_eq!(connector.attempts(down.addr), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    shared: Arc<Shared>,
    buffer_size: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    accepted: mpsc::UnboundedSender<(Target, DuplexStream)>,
}

#[derive(Debug, Default)]
struct State {
    standing: HashMap<SocketAddr, MemoryBehaviour>,
    scripts: HashMap<SocketAddr, VecDeque<MemoryBehaviour>>,
    log: Vec<Target>,
}

/// The server side of a [`MemoryConnector`].
#[derive(Debug)]
pub struct MemoryListener {
    accepted: mpsc::UnboundedReceiver<(Target, DuplexStream)>,
}

impl MemoryConnector {
    /// The default pipe buffer per direction (64 KiB).
    pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

    /// A connector whose pipes buffer [`DEFAULT_BUFFER_SIZE`](Self::DEFAULT_BUFFER_SIZE) bytes
    /// per direction, and its listener.
    #[must_use]
    pub fn new() -> (Self, MemoryListener) {
        Self::with_buffer_size(Self::DEFAULT_BUFFER_SIZE)
    }

    /// Like [`new`](Self::new) with this many bytes of buffer per direction (at least 1); a
    /// small buffer makes writers block until the peer reads, as on a congested socket.
    #[must_use]
    pub fn with_buffer_size(buffer_size: usize) -> (Self, MemoryListener) {
        let (tx, rx) = mpsc::unbounded_channel();
        let connector = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                accepted: tx,
            }),
            buffer_size: buffer_size.max(1),
        };
        (connector, MemoryListener { accepted: rx })
    }

    /// The pipe buffer size per direction.
    #[must_use]
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Sets the standing behaviour for `addr`, used whenever its one-shot script is empty.
    pub fn set_behaviour(&self, addr: SocketAddr, behaviour: MemoryBehaviour) {
        self.state().standing.insert(addr, behaviour);
    }

    /// Makes connects to `addr` fail with [`ConnectError::Refused`].
    pub fn refuse(&self, addr: SocketAddr) {
        self.set_behaviour(addr, MemoryBehaviour::Refuse);
    }

    /// Makes connects to `addr` hang until their deadline ([`ConnectError::TimedOut`]).
    pub fn hang(&self, addr: SocketAddr) {
        self.set_behaviour(addr, MemoryBehaviour::Hang);
    }

    /// Restores normal accepting for `addr` and clears its one-shot script.
    pub fn restore(&self, addr: SocketAddr) {
        let mut state = self.state();
        state.standing.remove(&addr);
        state.scripts.remove(&addr);
    }

    /// Queues one-shot behaviours for the next connects to `addr`, in order; once used up, the
    /// standing behaviour applies again.
    pub fn script(&self, addr: SocketAddr, behaviours: impl IntoIterator<Item = MemoryBehaviour>) {
        self.state()
            .scripts
            .entry(addr)
            .or_default()
            .extend(behaviours);
    }

    /// How many connects were attempted to `addr` (whatever their outcome).
    #[must_use]
    pub fn attempts(&self, addr: SocketAddr) -> usize {
        self.state().log.iter().filter(|t| t.addr == addr).count()
    }

    /// Every connect attempt so far, in order.
    #[must_use]
    pub fn attempt_log(&self) -> Vec<Target> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one operation.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn next_behaviour(&self, target: &Target) -> MemoryBehaviour {
        let mut state = self.state();
        state.log.push(target.clone());
        if let Some(behaviour) = state
            .scripts
            .get_mut(&target.addr)
            .and_then(VecDeque::pop_front)
        {
            return behaviour;
        }
        state
            .standing
            .get(&target.addr)
            .cloned()
            .unwrap_or(MemoryBehaviour::Accept)
    }

    fn open(&self, target: &Target) -> Result<BoxStream, ConnectError> {
        let (client, server) = tokio::io::duplex(self.buffer_size);
        self.shared
            .accepted
            .send((target.clone(), server))
            .map_err(|_listener_gone| ConnectError::Refused)?;
        Ok(Box::new(client))
    }
}

#[async_trait::async_trait]
impl Connector for MemoryConnector {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        let behaviour = self.next_behaviour(target);
        tracing::trace!(%target, ?behaviour, "memory connect");
        let attempt = async {
            match behaviour {
                MemoryBehaviour::Accept => self.open(target),
                MemoryBehaviour::AcceptAfter(delay) => {
                    tokio::time::sleep(delay).await;
                    self.open(target)
                }
                MemoryBehaviour::Refuse => Err(ConnectError::Refused),
                MemoryBehaviour::Hang => std::future::pending().await,
                MemoryBehaviour::Fail(err) => Err(err),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ConnectError::TimedOut),
        }
    }
}

impl MemoryListener {
    /// Waits for the next accepted connection: the target the client asked for and the server
    /// end of the pipe. `None` once every clone of the connector is dropped.
    pub async fn accept(&mut self) -> Option<(Target, DuplexStream)> {
        self.accepted.recv().await
    }

    /// The next accepted connection if one is waiting.
    pub fn try_accept(&mut self) -> Option<(Target, DuplexStream)> {
        self.accepted.try_recv().ok()
    }
}
