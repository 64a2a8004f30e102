//! The receive low-water mark (`SO_RCVLOWAT`) of a TCP stream, plain or under TLS.
//!
//! With many requests in flight, waking up for every reply or two costs more CPU than the
//! replies themselves (an `epoll_wait`, a context switch and a `recv` each time). A socket
//! whose low-water mark is `n` is reported readable only once `n` bytes are buffered (or on
//! EOF or an error), so the reader wakes up once per batch. Reads still return whatever is
//! buffered; only readiness changes. The caller must keep `n` at or below the bytes it is
//! certain to receive, or it waits for bytes that never come.

use std::any::Any;

use crate::{BoxStream, Stream};

/// Sets the receive low-water mark of `stream` to `bytes` (at least 1) if it is a
/// [`tokio::net::TcpStream`] on Linux, or the TLS stream of [`crate::TlsConnector`] over one
/// (the mark is set on the TCP socket underneath); returns whether it did. Other streams
/// (in-memory, custom transports) and other systems are left alone and return `false`.
///
/// The reader of a stream with a mark of `n` is woken only once `n` bytes are buffered, the
/// peer closed, or the connection failed. Use a mark no larger than the bytes that are certain
/// to arrive (say, the smallest possible answer to each request in flight), or reads stall.
/// Under TLS the mark counts ciphertext, which is never shorter than the plaintext it
/// carries; but the TLS layer may already hold the first part of a record, whose rest is then
/// all that is still to come — callers that cannot bound that keep a timer, as the session
/// driver does.
pub fn set_receive_low_water(stream: &dyn Stream, bytes: usize) -> bool {
    let any: &dyn Any = stream;
    if let Some(tcp) = any.downcast_ref::<tokio::net::TcpStream>() {
        return imp::set(tcp, bytes.max(1));
    }
    if let Some(tls) = any.downcast_ref::<tokio_rustls::client::TlsStream<BoxStream>>() {
        return set_receive_low_water(&**tls.get_ref().0, bytes);
    }
    if let Some(tls) = any.downcast_ref::<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>()
    {
        return set_receive_low_water(tls.get_ref().0, bytes);
    }
    false
}

#[cfg(target_os = "linux")]
mod imp {
    use std::os::fd::AsRawFd;

    /// `setsockopt(SOL_SOCKET, SO_RCVLOWAT)`; neither `std`, `tokio` nor `socket2` expose it.
    #[allow(
        unsafe_code,
        reason = "one setsockopt call with a stack c_int, see SAFETY"
    )]
    pub(super) fn set(tcp: &tokio::net::TcpStream, bytes: usize) -> bool {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(4);
        // SAFETY: the descriptor belongs to `tcp`, which the borrow keeps open for the
        // duration of the call; `value` is a live, properly aligned c_int on the stack and
        // `len` is its exact size; setsockopt only reads `len` bytes from the pointer.
        let rc = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                std::ptr::from_ref(&value).cast::<libc::c_void>(),
                len,
            )
        };
        rc == 0
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn set(_tcp: &tokio::net::TcpStream, _bytes: usize) -> bool {
        false
    }
}
