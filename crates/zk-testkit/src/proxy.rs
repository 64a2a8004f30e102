//! [`FaultProxy`]: a loopback TCP proxy that injects network faults at run time.
//!
//! Every proxy runs on one small runtime owned by the test kit (one worker thread, created on
//! first use), not on the caller's runtime. A proxy therefore keeps working when the runtime of
//! the test that created it is blocked or has ended, which matters for ensembles shared between
//! tests.
//!
//! Each connection reads at most 64 KiB at a time per direction and queues at most
//! [`QUEUE_CHUNKS`] chunks between its reader and its writer, so memory per connection is bounded.
//!
//! **Blackhole model.** While [`ProxyMode::Blackhole`] is set, the proxy stops reading and stops
//! writing in both directions; it never discards bytes. This models a partition on which TCP
//! keeps retransmitting: a client sees exactly what it sees with a SIGSTOPped server (silence,
//! the connection stays open), and if the partition heals (`Pass` again) the queued bytes are
//! delivered late, in order. Because nothing is read, a client closing its socket during the
//! blackhole is noticed only after the heal, as with a real partition.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest read per direction and per syscall.
pub const CHUNK: usize = 64 * 1024;
/// Chunks queued per direction between reader and writer (the bound on buffered bytes is
/// `CHUNK * QUEUE_CHUNKS` per direction and connection).
pub const QUEUE_CHUNKS: usize = 32;
/// Frames longer than this switch the frame parser off for the connection (not ZooKeeper).
const MAX_FRAME: usize = 64 << 20;

/// What the proxy does with traffic. Switchable at any time with [`FaultProxy::set_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forward everything (after the configured latency).
    #[default]
    Pass,
    /// Keep every connection open but move no byte in either direction; new connections are
    /// accepted and blackholed too (the upstream connection is opened only once healed).
    /// Switching back to `Pass` delivers what was held, late. See the module docs.
    Blackhole,
    /// Reset (RST) every newly accepted connection at once; existing connections pass.
    RefuseNew,
    /// Accept new connections but never forward or answer them (a frozen host whose kernel still
    /// completes handshakes). Connections accepted in this mode stay silent for their whole life;
    /// existing connections pass.
    AcceptSilent,
}

/// Which client→server frame [`FaultProxy::hold_next_frame_matching`] captures.
///
/// ZooKeeper frames are a 4-byte big-endian length and a payload; a request payload starts
/// with `xid: i32` and `type: i32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldFilter {
    /// Whether the first frame of a connection (the ConnectRequest) may be captured.
    pub include_connect_request: bool,
    /// Whether requests with a negative (special) xid may be captured: pings (−2), auth (−4),
    /// SetWatches (−8). By default only user requests (xid ≥ 0) are.
    pub include_special_xids: bool,
    /// Capture only requests with this opcode (e.g. 1 = create, 5 = setData).
    pub opcode: Option<i32>,
}

impl HoldFilter {
    /// Any user request: not the ConnectRequest, not pings, auth or SetWatches (the default).
    pub fn any_request() -> Self {
        Self::default()
    }

    /// Only requests with opcode `op`.
    pub fn opcode(op: i32) -> Self {
        Self {
            opcode: Some(op),
            ..Self::default()
        }
    }

    fn matches(&self, frame_index: u64, header: &[u8]) -> bool {
        if frame_index == 0 {
            return self.include_connect_request;
        }
        let word = |at: usize| {
            header
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(i32::from_be_bytes)
        };
        if !self.include_special_xids && word(4).is_some_and(|xid| xid < 0) {
            return false;
        }
        match self.opcode {
            Some(op) => word(8) == Some(op),
            None => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldPhase {
    Armed,
    Captured,
    Released,
    Forwarded,
    /// The connection died while the frame was held.
    Dropped,
    /// Re-armed or dropped before anything was captured.
    Cancelled,
}

#[derive(Debug)]
struct HoldSlot {
    filter: HoldFilter,
    phase: watch::Sender<HoldPhase>,
    frame: Mutex<Option<Vec<u8>>>,
}

impl HoldSlot {
    fn phase(&self) -> HoldPhase {
        *self.phase.borrow()
    }

    /// Move from `from` to `to`; false if the phase was something else.
    fn transition(&self, from: HoldPhase, to: HoldPhase) -> bool {
        self.phase.send_if_modified(|p| {
            if *p == from {
                *p = to;
                true
            } else {
                false
            }
        })
    }
}

/// A client→server frame held back by the proxy. Obtained from [`FaultProxy::hold_next_frame`].
///
/// Bytes the client sends after the held frame queue behind it (TCP never reorders), so the
/// connection is stalled in that direction until [`HeldFrame::release`]. Dropping the handle
/// releases a captured frame (and disarms an uncaptured one), so a forgotten handle cannot wedge
/// a connection forever.
#[derive(Debug)]
pub struct HeldFrame {
    slot: Arc<HoldSlot>,
    shared: Arc<Shared>,
}

impl HeldFrame {
    /// Wait until a frame has been captured; false on timeout (or if the hold was cancelled).
    pub async fn wait_captured(&self, timeout: Duration) -> bool {
        let mut rx = self.slot.phase.subscribe();
        let fut = rx.wait_for(|p| *p != HoldPhase::Armed);
        matches!(tokio::time::timeout(timeout, fut).await, Ok(Ok(p)) if *p != HoldPhase::Cancelled)
    }

    /// Whether a frame has been captured (it may since have been released).
    pub fn is_captured(&self) -> bool {
        !matches!(self.slot.phase(), HoldPhase::Armed | HoldPhase::Cancelled)
    }

    /// A copy of the captured frame, length prefix included.
    pub fn frame(&self) -> Option<Vec<u8>> {
        lock(&self.slot.frame).clone()
    }

    /// Forward the captured frame (and everything queued behind it). Returns false if nothing was
    /// captured yet, it was already released, or its connection no longer exists.
    pub fn release(&self) -> bool {
        self.slot
            .transition(HoldPhase::Captured, HoldPhase::Released)
    }

    /// Wait until a released frame has been written to the server; false on timeout or if the
    /// connection died first.
    pub async fn wait_forwarded(&self, timeout: Duration) -> bool {
        let mut rx = self.slot.phase.subscribe();
        let fut = rx.wait_for(|p| {
            matches!(
                p,
                HoldPhase::Forwarded | HoldPhase::Dropped | HoldPhase::Cancelled
            )
        });
        matches!(tokio::time::timeout(timeout, fut).await, Ok(Ok(p)) if *p == HoldPhase::Forwarded)
    }
}

impl Drop for HeldFrame {
    fn drop(&mut self) {
        if self.slot.transition(HoldPhase::Armed, HoldPhase::Cancelled) {
            let mut armed = lock(&self.shared.armed);
            if armed.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.slot)) {
                *armed = None;
                self.shared.hold_armed.store(false, Ordering::SeqCst);
            }
        } else {
            self.release();
        }
    }
}

/// Lock a mutex, ignoring poisoning (the data are plain values that stay consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    /// (client→server, server→client)
    latency: Mutex<(Duration, Duration)>,
    reset: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    live: AtomicUsize,
    accepted: AtomicU64,
    hold_armed: AtomicBool,
    armed: Mutex<Option<Arc<HoldSlot>>>,
}

impl Shared {
    /// Claim the armed hold for a frame starting with `header`, if it matches.
    fn try_capture(&self, frame_index: u64, header: &[u8]) -> Option<Arc<HoldSlot>> {
        if !self.hold_armed.load(Ordering::SeqCst) {
            return None;
        }
        let mut armed = lock(&self.armed);
        let slot = armed.as_ref()?;
        if !slot.filter.matches(frame_index, header) {
            return None;
        }
        let slot = armed.take()?;
        self.hold_armed.store(false, Ordering::SeqCst);
        Some(slot)
    }
}

/// Decrements the live-connection count when a connection task ends.
struct LiveGuard(Arc<Shared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A loopback TCP proxy in front of one address with run-time fault injection.
///
/// Dropping the proxy closes its listener and every connection it carries.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zk-testkit-proxy")
            .enable_all()
            .build()
            .ok()
    })
    .as_ref()
    .ok_or_else(|| io::Error::other("could not build the proxy runtime"))
}

/// Close a socket with RST instead of FIN.
fn rst(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Accept queue of a proxy's listener: like the servers' `clientPortListenBacklog` in a
/// storm test, so a thousand clients reconnecting at once are not dropped by the proxy's
/// kernel queue (`std`'s `bind` allows 128, and a dropped SYN is retried only after 1 s).
const PROXY_BACKLOG: i32 = 1024;

/// A non-blocking listener on `127.0.0.1:<free port>` with [`PROXY_BACKLOG`].
fn listen_loopback() -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(PROXY_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl FaultProxy {
    /// Start a proxy on `127.0.0.1:<free port>` in front of `target`.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = listen_loopback()?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            mode: watch::Sender::new(ProxyMode::Pass),
            latency: Mutex::new((Duration::ZERO, Duration::ZERO)),
            reset: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            hold_armed: AtomicBool::new(false),
            armed: Mutex::new(None),
        });
        let rt = runtime()?;
        let accept_task = rt.spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, %target, "fault proxy started");
        Ok(Self {
            addr,
            shared,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Switch the mode; takes effect at once, on existing connections too (see [`ProxyMode`]).
    pub fn set_mode(&self, mode: ProxyMode) {
        tracing::debug!(addr = %self.addr, ?mode, "proxy mode");
        self.shared.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.shared.mode.borrow()
    }

    /// Delay every chunk by a fixed time per direction (applied from the moment it is read, so
    /// latency does not add up across chunks). Zero turns it off.
    pub fn set_latency(&self, client_to_server: Duration, server_to_client: Duration) {
        *lock(&self.shared.latency) = (client_to_server, server_to_client);
    }

    /// Reset (RST) every live connection, on both sides; the proxy keeps accepting.
    pub fn reset_all(&self) {
        self.shared.reset.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Arm a hold on the next client→server user request frame of any connection: not a
    /// ConnectRequest, ping, auth or SetWatches (see [`HoldFilter`]). Arming again replaces an
    /// uncaptured hold.
    pub fn hold_next_frame(&self) -> HeldFrame {
        self.hold_next_frame_matching(HoldFilter::any_request())
    }

    /// Like [`FaultProxy::hold_next_frame`] with an explicit filter.
    pub fn hold_next_frame_matching(&self, filter: HoldFilter) -> HeldFrame {
        let slot = Arc::new(HoldSlot {
            filter,
            phase: watch::Sender::new(HoldPhase::Armed),
            frame: Mutex::new(None),
        });
        let previous = lock(&self.shared.armed).replace(Arc::clone(&slot));
        if let Some(prev) = previous {
            prev.transition(HoldPhase::Armed, HoldPhase::Cancelled);
        }
        self.shared.hold_armed.store(true, Ordering::SeqCst);
        HeldFrame {
            slot,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Connections currently open through the proxy (silent ones included).
    pub fn connection_count(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Connections accepted since the proxy started (refused ones included).
    pub fn accepted_total(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "proxy listener could not be registered");
            return;
        }
    };
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let mode = *shared.mode.borrow();
        if mode == ProxyMode::RefuseNew {
            rst(&stream);
            drop(stream);
            continue;
        }
        shared.live.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(Arc::clone(&shared));
        // Subscribe before spawning so a reset right after accept is not missed.
        let reset = shared.reset.subscribe();
        if mode == ProxyMode::AcceptSilent {
            tokio::spawn(run_silent(stream, guard, reset));
        } else {
            tokio::spawn(run_conn(stream, guard, reset));
        }
    }
}

async fn run_silent(mut client: TcpStream, guard: LiveGuard, mut reset: watch::Receiver<u64>) {
    let mut shutdown = guard.0.shutdown.subscribe();
    let mut sink = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = client.read(&mut sink) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = reset.changed() => { rst(&client); return; }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Wait while the proxy is blackholed.
async fn wait_forwarding(mode: &mut watch::Receiver<ProxyMode>) {
    let _ = mode.wait_for(|m| *m != ProxyMode::Blackhole).await;
}

async fn run_conn(mut client: TcpStream, guard: LiveGuard, mut reset: watch::Receiver<u64>) {
    let shared = Arc::clone(&guard.0);
    let mut shutdown = shared.shutdown.subscribe();
    let mut mode = shared.mode.subscribe();
    let target = shared.target;
    let upstream = tokio::select! {
        r = async { wait_forwarding(&mut mode).await; TcpStream::connect(target).await } => r,
        _ = reset.changed() => { rst(&client); return; }
        _ = shutdown.wait_for(|s| *s) => return,
    };
    let mut upstream = match upstream {
        Ok(s) => s,
        Err(e) => {
            // What the client would have seen connecting directly: a refusal, made a reset.
            tracing::debug!(%target, error = %e, "proxy upstream connect failed");
            rst(&client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let outcome = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let c2s = pump(cr, uw, &shared, Direction::ClientToServer);
        let s2c = pump(ur, cw, &shared, Direction::ServerToClient);
        tokio::select! {
            r = async { tokio::try_join!(c2s, s2c) } => r.map(|_| ()),
            _ = reset.changed() => Err(io::Error::from(io::ErrorKind::ConnectionReset)),
            _ = shutdown.wait_for(|s| *s) => Ok(()),
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(error = %e, "proxied connection aborted with RST");
        rst(&client);
        rst(&upstream);
    }
    drop(guard);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ClientToServer,
    ServerToClient,
}

enum Segment {
    Data(Vec<u8>),
    Held(HeldItem),
}

/// A captured frame travelling through the queue; marks the hold `Dropped` if lost.
struct HeldItem {
    frame: Vec<u8>,
    slot: Arc<HoldSlot>,
}

impl Drop for HeldItem {
    fn drop(&mut self) {
        // No-op once forwarded; otherwise the connection died with the frame held.
        self.slot
            .transition(HoldPhase::Captured, HoldPhase::Dropped);
        self.slot
            .transition(HoldPhase::Released, HoldPhase::Dropped);
    }
}

struct Item {
    segment: Segment,
    due: Instant,
}

/// Copy one direction: reader → bounded queue (with latency stamps) → writer.
async fn pump<R, W>(mut reader: R, mut writer: W, shared: &Shared, dir: Direction) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Item>(QUEUE_CHUNKS);
    let mut read_mode = shared.mode.subscribe();
    let mut write_mode = shared.mode.subscribe();
    let read_side = async move {
        let mut framer = (dir == Direction::ClientToServer).then(Framer::default);
        let mut buf = vec![0u8; CHUNK];
        loop {
            wait_forwarding(&mut read_mode).await;
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            let latency = {
                let l = lock(&shared.latency);
                match dir {
                    Direction::ClientToServer => l.0,
                    Direction::ServerToClient => l.1,
                }
            };
            let due = Instant::now() + latency;
            let data = buf.get(..n).unwrap_or_default();
            let segments = match framer.as_mut() {
                Some(f) => f.feed(data, shared),
                None => vec![Segment::Data(data.to_vec())],
            };
            for segment in segments {
                if tx.send(Item { segment, due }).await.is_err() {
                    return Ok(());
                }
            }
        }
    };
    let write_side = async move {
        while let Some(item) = rx.recv().await {
            tokio::time::sleep_until(item.due).await;
            wait_forwarding(&mut write_mode).await;
            match item.segment {
                Segment::Data(bytes) => writer.write_all(&bytes).await?,
                Segment::Held(held) => {
                    let mut phase = held.slot.phase.subscribe();
                    let _ = phase.wait_for(|p| *p == HoldPhase::Released).await;
                    wait_forwarding(&mut write_mode).await;
                    writer.write_all(&held.frame).await?;
                    held.slot
                        .transition(HoldPhase::Released, HoldPhase::Forwarded);
                }
            }
        }
        // The reader saw EOF: pass the half-close on.
        writer.shutdown().await
    };
    tokio::try_join!(read_side, write_side).map(|_| ())
}

/// Tracks ZooKeeper frame boundaries in the client→server stream so one frame can be held.
#[derive(Default)]
struct Framer {
    /// Complete frames seen so far on this connection (0 = the ConnectRequest is next).
    frames: u64,
    state: FrameState,
}

#[derive(Default)]
enum FrameState {
    /// At a frame boundary.
    #[default]
    Start,
    /// Reading the length prefix (bytes are forwarded as they come).
    Len { got: usize, header: [u8; 4] },
    /// Forwarding the rest of a frame.
    Body { remaining: usize },
    /// A hold is armed: withholding the first bytes until the filter can decide.
    Pending { header: Vec<u8> },
    /// Accumulating a captured frame.
    Capturing {
        buf: Vec<u8>,
        total: usize,
        slot: Arc<HoldSlot>,
    },
    /// Not ZooKeeper framing (negative or huge length): forward blindly.
    Unframed,
}

fn frame_len(prefix: &[u8]) -> Option<usize> {
    let bytes = <[u8; 4]>::try_from(prefix.get(..4)?).ok()?;
    usize::try_from(i32::from_be_bytes(bytes))
        .ok()
        .filter(|&l| l <= MAX_FRAME)
}

impl Framer {
    fn feed(&mut self, mut input: &[u8], shared: &Shared) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut pass: Vec<u8> = Vec::new();
        while !input.is_empty() {
            let state = std::mem::take(&mut self.state);
            self.state = match state {
                FrameState::Start => {
                    if shared.hold_armed.load(Ordering::SeqCst) {
                        FrameState::Pending {
                            header: Vec::with_capacity(12),
                        }
                    } else {
                        FrameState::Len {
                            got: 0,
                            header: [0; 4],
                        }
                    }
                }
                FrameState::Len {
                    mut got,
                    mut header,
                } => {
                    let take = (4 - got).min(input.len());
                    let (head, rest) = input.split_at(take);
                    if let Some(dst) = header.get_mut(got..got + take) {
                        dst.copy_from_slice(head);
                    }
                    pass.extend_from_slice(head);
                    input = rest;
                    got += take;
                    if got < 4 {
                        FrameState::Len { got, header }
                    } else {
                        match frame_len(&header) {
                            Some(0) => {
                                self.frames += 1;
                                FrameState::Start
                            }
                            Some(remaining) => FrameState::Body { remaining },
                            None => FrameState::Unframed,
                        }
                    }
                }
                FrameState::Body { remaining } => {
                    let take = remaining.min(input.len());
                    let (head, rest) = input.split_at(take);
                    pass.extend_from_slice(head);
                    input = rest;
                    if remaining == take {
                        self.frames += 1;
                        FrameState::Start
                    } else {
                        FrameState::Body {
                            remaining: remaining - take,
                        }
                    }
                }
                FrameState::Pending { mut header } => loop {
                    let want = if header.len() < 4 {
                        4
                    } else {
                        match frame_len(&header) {
                            Some(l) => (4 + l).min(12),
                            None => {
                                pass.extend_from_slice(&header);
                                break FrameState::Unframed;
                            }
                        }
                    };
                    if header.len() >= want && header.len() >= 4 {
                        break self.decide(header, shared, &mut pass, &mut out);
                    }
                    if input.is_empty() {
                        break FrameState::Pending { header };
                    }
                    let take = (want - header.len()).min(input.len());
                    let (head, rest) = input.split_at(take);
                    header.extend_from_slice(head);
                    input = rest;
                },
                FrameState::Capturing {
                    mut buf,
                    total,
                    slot,
                } => {
                    let take = (total - buf.len()).min(input.len());
                    let (head, rest) = input.split_at(take);
                    buf.extend_from_slice(head);
                    input = rest;
                    self.finish_capture(buf, total, slot, &mut pass, &mut out)
                }
                FrameState::Unframed => {
                    pass.extend_from_slice(input);
                    input = &[];
                    FrameState::Unframed
                }
            };
        }
        if !pass.is_empty() {
            out.push(Segment::Data(pass));
        }
        out
    }

    /// The header of an eligible frame is complete: capture it or let it pass.
    fn decide(
        &mut self,
        header: Vec<u8>,
        shared: &Shared,
        pass: &mut Vec<u8>,
        out: &mut Vec<Segment>,
    ) -> FrameState {
        let total = frame_len(&header).map_or(header.len(), |l| l + 4);
        match shared.try_capture(self.frames, &header) {
            Some(slot) => self.finish_capture(header, total, slot, pass, out),
            None => {
                pass.extend_from_slice(&header);
                let remaining = total.saturating_sub(header.len());
                if remaining == 0 {
                    self.frames += 1;
                    FrameState::Start
                } else {
                    FrameState::Body { remaining }
                }
            }
        }
    }

    fn finish_capture(
        &mut self,
        buf: Vec<u8>,
        total: usize,
        slot: Arc<HoldSlot>,
        pass: &mut Vec<u8>,
        out: &mut Vec<Segment>,
    ) -> FrameState {
        if buf.len() < total {
            return FrameState::Capturing { buf, total, slot };
        }
        if !pass.is_empty() {
            out.push(Segment::Data(std::mem::take(pass)));
        }
        *lock(&slot.frame) = Some(buf.clone());
        slot.transition(HoldPhase::Armed, HoldPhase::Captured);
        tracing::debug!(len = buf.len(), "proxy holding a frame");
        out.push(Segment::Held(HeldItem { frame: buf, slot }));
        self.frames += 1;
        FrameState::Start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            target: SocketAddr::from(([127, 0, 0, 1], 1)),
            mode: watch::Sender::new(ProxyMode::Pass),
            latency: Mutex::new((Duration::ZERO, Duration::ZERO)),
            reset: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            hold_armed: AtomicBool::new(false),
            armed: Mutex::new(None),
        }
    }

    fn arm(shared: &Shared, filter: HoldFilter) -> Arc<HoldSlot> {
        let slot = Arc::new(HoldSlot {
            filter,
            phase: watch::Sender::new(HoldPhase::Armed),
            frame: Mutex::new(None),
        });
        *lock(&shared.armed) = Some(Arc::clone(&slot));
        shared.hold_armed.store(true, Ordering::SeqCst);
        slot
    }

    fn frame(xid: i32, op: i32, extra: &[u8]) -> Vec<u8> {
        let len = i32::try_from(8 + extra.len()).unwrap();
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(&xid.to_be_bytes());
        v.extend_from_slice(&op.to_be_bytes());
        v.extend_from_slice(extra);
        v
    }

    /// Flatten segments into (passed bytes before the hold, held frame, passed after).
    fn split(segs: Vec<Segment>) -> (Vec<u8>, Option<Vec<u8>>, Vec<u8>) {
        let mut before = Vec::new();
        let mut held = None;
        let mut after = Vec::new();
        for s in segs {
            match s {
                Segment::Data(d) if held.is_none() => before.extend(d),
                Segment::Data(d) => after.extend(d),
                Segment::Held(h) => held = Some(h.frame.clone()),
            }
        }
        (before, held, after)
    }

    #[test]
    fn passes_everything_when_not_armed() {
        let sh = shared();
        let mut f = Framer::default();
        let mut input = vec![0, 0, 0, 3, 1, 2, 3];
        input.extend(frame(1, 4, b"abc"));
        let (before, held, after) = split(f.feed(&input, &sh));
        assert_eq!(before, input);
        assert!(held.is_none() && after.is_empty());
        assert_eq!(f.frames, 2);
    }

    #[test]
    fn skips_connect_and_ping_then_holds_byte_by_byte() {
        let sh = shared();
        let slot = arm(&sh, HoldFilter::any_request());
        let connect = [&[0u8, 0, 0, 5][..], &[9; 5]].concat();
        let ping = [frame(-2, 11, b""), frame(-8, 101, b"w")].concat();
        let req = frame(7, 1, b"/path");
        let tail = frame(8, 3, b"x");
        let all = [connect.clone(), ping.clone(), req.clone(), tail.clone()].concat();
        let mut f = Framer::default();
        let mut segs = Vec::new();
        for b in &all {
            segs.extend(f.feed(std::slice::from_ref(b), &sh));
        }
        assert_eq!(slot.phase(), HoldPhase::Captured);
        assert!(!sh.hold_armed.load(Ordering::SeqCst));
        let (before, held, after) = split(segs);
        assert_eq!(before, [connect, ping].concat());
        assert_eq!(held.as_deref(), Some(&req[..]));
        assert_eq!(after, tail);
        // The held item was dropped without being forwarded: its connection "died".
        assert_eq!(slot.phase(), HoldPhase::Dropped);
    }

    #[test]
    fn opcode_filter_and_connect_request() {
        let sh = shared();
        arm(&sh, HoldFilter::opcode(5));
        let mut f = Framer {
            frames: 1,
            ..Framer::default()
        };
        let a = frame(1, 4, b"..");
        let b = frame(2, 5, b"....");
        let (before, held, _) = split(f.feed(&[a.clone(), b.clone()].concat(), &sh));
        assert_eq!(before, a);
        assert_eq!(held.unwrap(), b);

        let sh = shared();
        arm(
            &sh,
            HoldFilter {
                include_connect_request: true,
                ..HoldFilter::default()
            },
        );
        let mut f = Framer::default();
        let connect = [&[0u8, 0, 0, 2][..], &[1, 2]].concat();
        let (before, held, _) = split(f.feed(&connect, &sh));
        assert!(before.is_empty());
        assert_eq!(held.unwrap(), connect);
    }

    #[test]
    fn garbage_length_goes_unframed() {
        let sh = shared();
        arm(&sh, HoldFilter::any_request());
        let mut f = Framer {
            frames: 3,
            ..Framer::default()
        };
        let junk = [0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let (before, held, _) = split(f.feed(&junk, &sh));
        assert_eq!(before, junk);
        assert!(held.is_none());
    }
}
