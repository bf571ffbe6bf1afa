//! IPC (issue 3): the container's /dev/mqueue is the mqueue filesystem of its own ipc namespace.
//! A POSIX message queue made inside is not on the host and the host's are not inside; with the
//! host's ipc namespace (and no user namespace) the mount shows the host's queues, as sharing the
//! namespace means (src/linux/namespaces.rs: `check`).

mod common;

use std::ffi::CString;

use common::{require_root, Bundle};

/// A POSIX message queue in the test's (the host's) ipc namespace, unlinked on drop.
struct HostQueue(CString);

fn queue_name(name: &str) -> CString {
    CString::new(format!("/{name}")).expect("queue name")
}

impl HostQueue {
    fn create(name: &str) -> HostQueue {
        let c = queue_name(name);
        // SAFETY: `c` is NUL-terminated and outlives the call; a null attr asks for the default
        // sizes; the descriptor returned is closed right away.
        let fd =
            unsafe { libc::mq_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600 as libc::mode_t, std::ptr::null_mut::<libc::mq_attr>()) };
        assert!(fd >= 0, "mq_open {c:?}: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is the queue descriptor just opened, closed once.
        unsafe { libc::mq_close(fd) };
        HostQueue(c)
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        // SAFETY: the name is NUL-terminated and outlives the call.
        unsafe { libc::mq_unlink(self.0.as_ptr()) };
    }
}

/// Whether the host's ipc namespace has a queue of this name.
fn host_has(name: &str) -> bool {
    let c = queue_name(name);
    // SAFETY: `c` is NUL-terminated and outlives the call; without O_CREAT no further argument is
    // read; a descriptor returned is closed right away.
    let fd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY) };
    if fd >= 0 {
        // SAFETY: `fd` is the queue descriptor just opened, closed once.
        unsafe { libc::mq_close(fd) };
        return true;
    }
    let e = std::io::Error::last_os_error();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "mq_open {c:?}: {e}");
    false
}

#[test]
fn message_queues_of_the_container_and_of_the_host_do_not_see_each_other() {
    if !require_root() {
        return;
    }
    let host = format!("testudo-host-{}", std::process::id());
    let inside = format!("testudo-ctr-{}", std::process::id());
    let _q = HostQueue::create(&host);
    let b = Bundle::new("exec sleep 100");
    b.start();
    // Creating a file on an mqueue mount creates a queue; reading it gives the queue's status.
    let (code, out, err) = b.exec(&["sh", "-c", &format!("touch /dev/mqueue/{inside} && cat /dev/mqueue/{inside} && ls /dev/mqueue")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("QSIZE:0"), "not a message queue: {out}");
    assert!(!out.contains(&host), "the host's queue is visible in the container: {out}");
    assert!(!host_has(&inside), "the container's queue {inside} is on the host");
    // It lives in the container's ipc namespace, not in the exec that made it.
    let (_, out, _) = b.exec(&["ls", "/dev/mqueue"]);
    assert_eq!(out.trim(), inside, "{out}");
    // With the host's ipc namespace the mount shows the host's queues, and what the container
    // makes is the host's.
    let shared_name = format!("testudo-shared-{}", std::process::id());
    let mut shared = Bundle::new(&format!("ls /dev/mqueue; touch /dev/mqueue/{shared_name}"));
    shared.drop_namespace("ipc");
    let out = shared.run_ok();
    let _made = HostQueue(queue_name(&shared_name));
    assert!(out.lines().any(|l| l == host), "the host's ipc namespace is shared but its queue is not in /dev/mqueue: {out}");
    assert!(host_has(&shared_name), "a queue made with the host's ipc namespace is not the host's");
}
