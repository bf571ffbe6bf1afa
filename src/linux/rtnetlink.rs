//! Route netlink (rtnetlink(7)), the little of it `linux.netDevices` needs: find a link, list its
//! addresses, move it to another network namespace (renaming it there), add addresses to it and
//! bring it up. A socket stays in the network namespace it was made in, whatever its owner joins
//! later: P0 makes one in the container's namespace and works on both sides from the host.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{last_os, Error, Result};

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
/// IFLA_NET_NS_FD (linux/if_link.h); not in every libc release.
const IFLA_NET_NS_FD: u16 = 28;

/// An address of a link, as the kernel listed it: family, prefix length and its attributes
/// (IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST), which are added back as they were.
#[derive(Debug, Clone)]
pub struct Address {
    family: u8,
    prefix: u8,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// `10.1.2.3/24` for messages.
    pub fn show(&self) -> String {
        let local = self.attrs.iter().find(|(t, _)| *t == libc::IFA_LOCAL).or_else(|| self.attrs.iter().find(|(t, _)| *t == libc::IFA_ADDRESS));
        let ip = match local.map(|(_, v)| v.as_slice()) {
            Some(&[a, b, c, d]) => std::net::IpAddr::from([a, b, c, d]).to_string(),
            Some(v) if v.len() == 16 => <[u8; 16]>::try_from(v).map(|b| std::net::IpAddr::from(b).to_string()).unwrap_or_default(),
            _ => "?".into(),
        };
        format!("{ip}/{}", self.prefix)
    }
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A route netlink socket in the caller's network namespace.
    pub fn open() -> Result<Socket> {
        // SAFETY: socket takes no pointers; the fd it returns is owned right below.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(last_os("netlink socket"));
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        Ok(Socket { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 0 })
    }

    /// The index of link `name` in this socket's namespace.
    pub fn link_index(&mut self, name: &str) -> Result<i32> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, libc::IFLA_IFNAME, &c_name(name)?);
        let replies = self.request(libc::RTM_GETLINK, 0, &body).map_err(|e| e.context(format!("network device {name:?}")))?;
        let msg = replies.first().ok_or_else(|| Error::new(format!("network device {name:?}: no answer")))?;
        let index = msg.get(4..8).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
        Ok(index)
    }

    /// The addresses of link `index` of global scope that are not temporary (what a user set up
    /// on it, as runc keeps: link-local and host-scope addresses belong to where the link is).
    pub fn global_addresses(&mut self, index: i32) -> Result<Vec<Address>> {
        let body = vec![0u8; IFADDRMSG];
        let mut out = Vec::new();
        for msg in self.request(libc::RTM_GETADDR, libc::NLM_F_DUMP as u16, &body)? {
            let Some(head) = msg.get(..IFADDRMSG) else { continue };
            let (family, prefix, flags, scope) = (head[0], head[1], head[2], head[3]);
            let ifindex = i32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
            if ifindex != index || scope != libc::RT_SCOPE_UNIVERSE || u32::from(flags) & libc::IFA_F_TEMPORARY != 0 {
                continue;
            }
            let attrs = attrs(&msg[IFADDRMSG..]).into_iter().filter(|(t, _)| matches!(*t, libc::IFA_LOCAL | libc::IFA_ADDRESS | libc::IFA_BROADCAST)).collect();
            out.push(Address { family, prefix, attrs });
        }
        Ok(out)
    }

    /// Move link `index` into the network namespace `netns` and name it `name` there (one
    /// request, as `ip link set DEV netns NS name NAME`: the kernel moves, then renames).
    pub fn move_to(&mut self, index: i32, netns: &OwnedFd, name: &str) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        attr(&mut body, IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        attr(&mut body, libc::IFLA_IFNAME, &c_name(name)?);
        self.request(libc::RTM_NEWLINK, 0, &body).map(drop)
    }

    pub fn add_address(&mut self, index: i32, a: &Address) -> Result<()> {
        let mut body = vec![a.family, a.prefix, 0, libc::RT_SCOPE_UNIVERSE];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (t, v) in &a.attrs {
            attr(&mut body, *t, v);
        }
        self.request(libc::RTM_NEWADDR, (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16, &body).map(drop)
    }

    pub fn set_up(&mut self, index: i32) -> Result<()> {
        let up = libc::IFF_UP as u32;
        self.request(libc::RTM_NEWLINK, 0, &ifinfomsg(index, up, up)).map(drop)
    }

    /// Send one request and read its answer: the messages of a dump, or none once acknowledged.
    /// An error the kernel answers with keeps its errno.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let seq = self.seq;
        let len = NLMSG_HDR + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16 | flags).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: `msg` is a valid buffer of `msg.len()` bytes; a null address sends to the
        // kernel (the socket's default peer).
        if unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(last_os("netlink send"));
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = last_os("netlink receive");
                if e.errno() == Some(nix::errno::Errno::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR {
                let mlen = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let mtype = u16::from_ne_bytes([rest[4], rest[5]]);
                let mseq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if mlen < NLMSG_HDR || mlen > rest.len() {
                    return Err(Error::new("netlink: a truncated answer"));
                }
                let payload = &rest[NLMSG_HDR..mlen];
                rest = &rest[align(mlen).min(rest.len())..];
                if mseq != seq {
                    continue;
                }
                match i32::from(mtype) {
                    libc::NLMSG_DONE => return Ok(out),
                    libc::NLMSG_ERROR => {
                        let code = payload.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(-libc::EIO);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(Error::sys("netlink", nix::errno::Errno::from_raw(-code)));
                    }
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; IFINFOMSG];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

fn attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]);
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, b[4..len].to_vec()));
        b = &b[align(len).min(b.len())..];
    }
    out
}

/// A link name as the kernel takes it (dev_valid_name): 1 to 15 bytes, not `.` or `..`, without
/// `/`, `:` or white space; NUL-terminated.
pub fn c_name(name: &str) -> Result<Vec<u8>> {
    let bad = name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name == "."
        || name == ".."
        || name.bytes().any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace() || c == 0);
    if bad {
        return Err(Error::new(format!("network device name {name:?}: not a valid interface name (1-15 bytes, no '/', ':' or white space)")));
    }
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_as_the_kernel_takes_them() {
        assert!(c_name("eth0").is_ok());
        assert!(c_name("ctr_dummy0").is_ok());
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "sixteen-bytes-xx"] {
            assert!(c_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut b = Vec::new();
        attr(&mut b, 3, b"ab\0");
        attr(&mut b, 28, &7u32.to_ne_bytes());
        assert_eq!(b.len(), 8 + 8);
        assert_eq!(attrs(&b), vec![(3, b"ab\0".to_vec()), (28, 7u32.to_ne_bytes().to_vec())]);
    }
}
