//! The listen queue depth of a UNIX socket, asked of the kernel by inode: a `sock_diag`
//! netlink request for AF_UNIX with `UDIAG_SHOW_RQLEN` (for a listening socket the kernel
//! answers the current backlog in `udiag_rqueue`), as `ss -xl` does, unprivileged. `libc`
//! lacks `linux/unix_diag.h`'s structures, so the few used are written out here.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
const NLMSG_HDR: usize = 16;
/// `struct unix_diag_req`.
const REQ_LEN: usize = 24;
/// `struct unix_diag_msg`.
const MSG_LEN: usize = 16;

/// The request for socket `inode`, as bytes (netlink header then `unix_diag_req`).
fn request(inode: u32) -> [u8; NLMSG_HDR + REQ_LEN] {
    let mut b = [0u8; NLMSG_HDR + REQ_LEN];
    b[0..4].copy_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    b[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let r = &mut b[NLMSG_HDR..];
    r[0] = libc::AF_UNIX as u8;
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    r[8..12].copy_from_slice(&inode.to_ne_bytes());
    r[12..16].copy_from_slice(&UDIAG_SHOW_RQLEN.to_ne_bytes());
    r[16..24].copy_from_slice(&[0xff; 8]); // no cookie
    b
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The `udiag_rqueue` of the answer to [`request`] for `inode`; `None` for an error or an
/// answer about another socket.
fn parse(answer: &[u8], inode: u32) -> Option<u32> {
    let len = (u32_at(answer, 0)? as usize).min(answer.len());
    if u16_at(answer, 4)? != SOCK_DIAG_BY_FAMILY || len < NLMSG_HDR + MSG_LEN {
        return None;
    }
    let msg = &answer[NLMSG_HDR..len];
    if u32_at(msg, 4)? != inode {
        return None;
    }
    let mut at = MSG_LEN;
    while at + 4 <= msg.len() {
        let alen = u16_at(msg, at)? as usize;
        if alen < 4 {
            return None;
        }
        if u16_at(msg, at + 2)? == UNIX_DIAG_RQLEN {
            return u32_at(msg, at + 4);
        }
        at += alen.div_ceil(4) * 4;
    }
    None
}

/// Connections waiting in the backlog of the listening UNIX socket `inode` now.
pub fn listen_queue(inode: u64) -> Option<u32> {
    let inode = u32::try_from(inode).ok()?;
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: a descriptor just created and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let req = request(inode);
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    let mut answer = [0u8; 1024];
    // SAFETY: plain system calls on a valid descriptor and buffers of the given lengths.
    let n = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::from_ref(&timeout).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        if libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) != req.len() as isize {
            return None;
        }
        libc::recv(fd.as_raw_fd(), answer.as_mut_ptr().cast(), answer.len(), 0)
    };
    let n = usize::try_from(n).ok()?;
    parse(&answer[..n], inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reports_a_listening_sockets_backlog() {
        use std::os::unix::net::{UnixListener, UnixStream};
        let dir = std::env::temp_dir().join(format!("rswsgi-diag-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let l = UnixListener::bind(&dir).unwrap();
        let inode = nix::sys::stat::fstat(&l).unwrap().st_ino;
        assert_eq!(listen_queue(inode), Some(0));
        let _a = UnixStream::connect(&dir).unwrap();
        let _b = UnixStream::connect(&dir).unwrap();
        assert_eq!(listen_queue(inode), Some(2));
        let _ = std::fs::remove_file(&dir);
        assert_eq!(parse(&[0; 8], 1), None);
        assert_eq!(parse(&[0xff; 64], 1), None);
    }
}
