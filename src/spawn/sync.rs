//! The typed messages between P0 and its children over a SOCK_SEQPACKET socketpair (message
//! boundaries kept, close-on-exec so that a successful execve reads as EOF).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};

use crate::error::{Context, Error, Result};
use crate::linux::procfs;

#[derive(Debug)]
pub enum Msg {
    /// child → P0: my user namespace exists; write its id maps.
    MapIds,
    /// P1 → P0: the pid of P2, in P0's pid namespace.
    Pid(i32),
    /// P2 → P0: namespaces and mounts exist; run prestart and createRuntime hooks now.
    Hooks,
    /// P2 → P0: everything is set up; waiting to be started.
    Ready,
    /// child → P0: setup failed.
    Fail(Error),
    /// P0 → child: go on.
    Ack,
    /// P0 → P2 (`run`): start now.
    Start,
    /// P0 → P2, in answer to Hooks: the OCI state JSON for the container's own hooks.
    State(Vec<u8>),
    /// P2 → P0, with the fd: the seccomp notify fd, for the listener.
    SeccompFd,
    /// P2 → P0 (`profile`): the recording filter's notify fd will be this number of P2's, from
    /// its installation right before execve (P0 takes it with pidfd_getfd).
    RecorderAt(i32),
    /// P0 → init, with the fd: the detached tree of mounts[i], made after the clone
    /// (`parent::after_maps`); an Ack ends them.
    Tree(u32),
}

const MAP_IDS: u8 = 1;
const PID: u8 = 2;
const HOOKS: u8 = 3;
const READY: u8 = 4;
const FAIL: u8 = 5;
const ACK: u8 = 6;
const START: u8 = 7;
const FD: u8 = 8;
const STATE: u8 = 9;
const SECCOMP_FD: u8 = 10;
const RECORDER_AT: u8 = 11;
const TREE: u8 = 12;

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).context("sync socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let mut buf = Vec::with_capacity(16);
        match m {
            Msg::MapIds => buf.push(MAP_IDS),
            Msg::Pid(p) => {
                buf.push(PID);
                buf.extend_from_slice(&p.to_le_bytes());
            }
            Msg::Hooks => buf.push(HOOKS),
            Msg::Ready => buf.push(READY),
            Msg::Fail(e) => {
                buf.push(FAIL);
                buf.extend_from_slice(&e.encode());
            }
            Msg::Ack => buf.push(ACK),
            Msg::Start => buf.push(START),
            Msg::State(json) => {
                buf.push(STATE);
                buf.extend_from_slice(json);
            }
            Msg::SeccompFd => buf.push(SECCOMP_FD),
            Msg::RecorderAt(n) => {
                buf.push(RECORDER_AT);
                buf.extend_from_slice(&n.to_le_bytes());
            }
            Msg::Tree(_) => return Err(Error::new("sync socket: a tree goes with its fd (send_tree)")),
        }
        self.send_raw(&buf, None)
    }

    /// Send the detached tree of mounts[i] (P0 → init).
    pub fn send_tree(&self, i: u32, fd: RawFd) -> Result<()> {
        let mut buf = vec![TREE];
        buf.extend_from_slice(&i.to_le_bytes());
        self.send_raw(&buf, Some(fd))
    }

    /// Send an fd (a pty master) with a tag.
    pub fn send_fd(&self, fd: RawFd) -> Result<()> {
        self.send_raw(&[FD], Some(fd))
    }

    /// Send the seccomp notify fd (P2 → P0).
    pub fn send_seccomp_fd(&self, fd: RawFd) -> Result<()> {
        self.send_raw(&[SECCOMP_FD], Some(fd))
    }

    fn send_raw(&self, buf: &[u8], fd: Option<RawFd>) -> Result<()> {
        let iov = [IoSlice::new(buf)];
        let fds;
        let cmsg: Vec<nix::sys::socket::ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![nix::sys::socket::ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Err(Errno::EINTR) => continue,
                r => return r.context("sendmsg on the sync socket").map(drop),
            }
        }
    }

    /// Receive one message; None at EOF (the peer exited or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_any()?.map(|(m, _)| m))
    }

    /// `recv_any` from a child that processes of the container can see (an exec's process in the
    /// container's pid namespace, an init in a shared one) and so can SIGSTOP: every 100 ms of
    /// silence `watch` is checked, and a stopped child is an error, not a wait without end.
    pub fn recv_watching(&self, watch: Option<i32>) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        loop {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u8)) {
                Ok(0) => {
                    if let Some(pid) = watch.filter(|&pid| procfs::stopped(pid)) {
                        return Err(Error::new(format!("process {pid} was stopped before it could start (SIGSTOP from inside the container?)")));
                    }
                }
                Ok(_) => return self.recv_any(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll sync socket", e)),
            }
        }
    }

    /// Receive a message that may carry an fd (returned alongside).
    pub fn recv_any(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        // Size the buffer by peeking at the message: a large zeroed buffer costs page faults on
        // the spawn path, and messages are small but unbounded (hook state carries annotations).
        let mut reset = false;
        let size = loop {
            match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut [0u8; 1], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Err(Errno::EINTR) => continue,
                // The peer closed with messages of ours unread (a child that failed before it
                // read the trees P0 sent): the error is reported once, and what the peer sent
                // before it closed (its Fail) is still queued behind it.
                Err(Errno::ECONNRESET) if !reset => reset = true,
                Err(e) => return Err(Error::sys("recvfrom on the sync socket", e)),
                Ok(n) => break n,
            }
        };
        let mut buf = vec![0u8; size.max(1)];
        let mut cbuf = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cbuf), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("recvmsg on the sync socket", e)),
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs().context("sync socket control message")? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: SCM_RIGHTS just installed this fd in our table.
                                let owned = unsafe { procfs::own(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let body = &buf[1..n];
        let msg = match buf[0] {
            MAP_IDS => Msg::MapIds,
            PID if body.len() == 4 => Msg::Pid(i32::from_le_bytes([body[0], body[1], body[2], body[3]])),
            RECORDER_AT if body.len() == 4 => Msg::RecorderAt(i32::from_le_bytes([body[0], body[1], body[2], body[3]])),
            HOOKS => Msg::Hooks,
            READY => Msg::Ready,
            FAIL => Msg::Fail(Error::decode(body)),
            ACK => Msg::Ack,
            START => Msg::Start,
            STATE => Msg::State(body.to_vec()),
            FD if fd.is_some() => return Ok(Some((Msg::Ack, fd))),
            SECCOMP_FD if fd.is_some() => Msg::SeccompFd,
            TREE if fd.is_some() && body.len() == 4 => Msg::Tree(u32::from_le_bytes([body[0], body[1], body[2], body[3]])),
            t => return Err(Error::new(format!("sync socket: unexpected message {t}"))),
        };
        Ok(Some((msg, fd)))
    }

    /// Wait for the peer's Ack (or its failure).
    pub fn expect_ack(&self) -> Result<()> {
        match self.recv()? {
            Some(Msg::Ack) => Ok(()),
            Some(Msg::Fail(e)) => Err(e),
            Some(m) => Err(Error::new(format!("sync socket: expected ack, got {m:?}"))),
            None => Err(Error::new("sync socket: parent went away")),
        }
    }
}
