//! A scripted bus for unit tests: it accepts clients on a socket in the temp dir, checks the
//! SASL exchange, and answers each message a client sends with what `script` returns.

use std::io::{Read, Write};

use super::message::{Kind, Message};
use super::wire::Value;

/// The socket path of a new fake bus. `auth_reply` is its answer to AUTH ("OK <guid>\r\n").
pub fn fake_bus(name: &str, auth_reply: &'static [u8], script: fn(&Message) -> Vec<Message>) -> String {
    let path = std::env::temp_dir().join(format!("testudo-fake-bus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || serve(s, auth_reply, script));
        }
    });
    path.to_string_lossy().into_owned()
}

fn line(s: &mut std::os::unix::net::UnixStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let l = buf[..i].to_vec();
            buf.drain(..i + 2);
            return Some(l);
        }
        let n = s.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(mut s: std::os::unix::net::UnixStream, auth_reply: &[u8], script: fn(&Message) -> Vec<Message>) {
    let mut buf = Vec::new();
    let Some(auth) = line(&mut s, &mut buf) else { return };
    assert!(auth.starts_with(b"\0AUTH EXTERNAL "), "{:?}", String::from_utf8_lossy(&auth));
    let _ = s.write_all(auth_reply);
    if !auth_reply.starts_with(b"OK") {
        return;
    }
    let Some(begin) = line(&mut s, &mut buf) else { return };
    assert_eq!(begin, b"BEGIN");
    let mut chunk = [0u8; 4096];
    let mut serial = 1000;
    loop {
        while let Ok(Some(len)) = Message::length(&buf) {
            if buf.len() < len {
                break;
            }
            let m = Message::decode(&buf[..len]).expect("client message");
            buf.drain(..len);
            for mut out in script(&m) {
                serial += 1;
                out.serial = serial;
                let _ = s.write_all(&out.encode());
            }
        }
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// The reply to `to`: a return with `body`, or an error named `error`.
pub fn reply(to: &Message, error: Option<&str>, body: Vec<Value>) -> Message {
    Message {
        kind: Some(if error.is_some() { Kind::Error } else { Kind::Return }),
        reply_serial: Some(to.serial),
        error_name: error.map(str::to_string),
        body,
        ..Default::default()
    }
}

/// A signal from systemd's manager object.
pub fn signal(member: &str, body: Vec<Value>) -> Message {
    Message {
        kind: Some(Kind::Signal),
        path: Some("/org/freedesktop/systemd1".into()),
        interface: Some("org.freedesktop.systemd1.Manager".into()),
        member: Some(member.into()),
        body,
        ..Default::default()
    }
}
