//! org.freedesktop.systemd1.Manager over the system bus (the host's systemd) or the user's bus
//! (the user's systemd manager, rootless): the calls the driver makes, each followed, when it
//! queues a job, by a wait for that job's JobRemoved signal. The match for the
//! signal is added before the call, so a job that finishes before its reply is read is not
//! missed (`Conn` keeps signals read while waiting for a reply).

use std::time::{Duration, Instant};

use crate::dbus::{BusError, Conn, Value};
use crate::error::{Error, Result};

use super::properties::{self, Property};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const IFACE: &str = "org.freedesktop.systemd1.Manager";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";

/// How long a start or stop job may take (runc waits 30 s as well).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Manager {
    conn: Conn,
    watching_jobs: bool,
}

const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

impl Manager {
    /// The manager on the user's bus at `user_bus`, or the host's on the system bus (None).
    pub fn connect(user_bus: Option<&str>) -> Result<Manager> {
        let Some(path) = user_bus else { return Manager::open(&crate::dbus::address::system_bus_path()?) };
        Manager::open(path).map_err(|e| match e.errno() {
            Some(nix::errno::Errno::ENOENT | nix::errno::Errno::ECONNREFUSED) => e.context(no_user_manager(path)),
            _ => e,
        })
    }

    fn open(bus: &str) -> Result<Manager> {
        Ok(Manager { conn: Conn::open(bus).map_err(|e| e.context("systemd cgroup driver"))?, watching_jobs: false })
    }

    fn call(&mut self, member: &str, body: Vec<Value>) -> Result<std::result::Result<Vec<Value>, BusError>> {
        self.conn.try_call(DEST, PATH, IFACE, member, body)
    }

    /// Call a manager method that queues a job, with the match for JobRemoved added first (in
    /// the same round trip: the bus handles our messages in order, so the match is in place
    /// before systemd sees the call).
    fn call_with_jobs(&mut self, member: &str, body: Vec<Value>) -> Result<std::result::Result<Vec<Value>, BusError>> {
        let matching = if self.watching_jobs {
            None
        } else {
            let rule = format!("type='signal',sender='{DEST}',path='{PATH}',interface='{IFACE}',member='JobRemoved'");
            Some(self.conn.send("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", vec![Value::Str(rule)])?)
        };
        let serial = self.conn.send(DEST, PATH, IFACE, member, body)?;
        if let Some(m) = matching {
            self.conn.reply(m, "org.freedesktop.DBus.AddMatch")??;
            self.watching_jobs = true;
        }
        self.conn.reply(serial, &format!("{IFACE}.{member}"))
    }

    /// Properties.Get of a string property: `iface`'s `name` on the object `path`.
    fn get_str(&mut self, path: &str, iface: &str, name: &str) -> Result<String> {
        let body = self.conn.try_call(DEST, path, PROPERTIES, "Get", vec![Value::str(iface), Value::str(name)])??;
        match body.first() {
            Some(Value::Variant(v)) if v.as_str().is_some() => Ok(v.as_str().unwrap_or_default().to_string()),
            other => Err(Error::new(format!("d-bus {}: {PROPERTIES}.Get {iface}.{name} of {path}: not a string: {other:?}", self.conn.bus))),
        }
    }

    /// The manager's own cgroup (`ControlGroup` of the Manager): the root of what it may manage,
    /// `/user.slice/user-UID.slice/user@UID.service` for a user's manager, relative to the
    /// hierarchy root.
    pub fn control_group(&mut self) -> Result<String> {
        self.get_str(PATH, IFACE, "ControlGroup")
    }

    /// The cgroup of a started unit (its `ControlGroup`, relative to the hierarchy root): the
    /// object path from GetUnit, then the property of its type's interface (Scope or Slice).
    pub fn unit_control_group(&mut self, unit: &str) -> Result<String> {
        let object = self.call("GetUnit", vec![Value::str(unit)])??;
        let object =
            object.first().and_then(Value::as_str).ok_or_else(|| Error::new(format!("systemd GetUnit {unit}: the reply names no object")))?.to_string();
        let iface = if unit.ends_with(".slice") { "org.freedesktop.systemd1.Slice" } else { "org.freedesktop.systemd1.Scope" };
        let cg = self.get_str(&object, iface, "ControlGroup")?;
        if cg.is_empty() {
            return Err(Error::new(format!("systemd unit {unit} has no cgroup (its ControlGroup is empty)")));
        }
        Ok(cg)
    }

    /// Wait for the job `reply` names to be removed; any result but "done" is an error.
    fn wait_job(&mut self, reply: &[Value], unit: &str, what: &str) -> Result<()> {
        let job = reply.first().and_then(Value::as_str).ok_or_else(|| Error::new(format!("systemd {what} {unit}: the reply names no job")))?.to_string();
        let deadline = Instant::now() + JOB_TIMEOUT;
        let m = self.conn.wait_signal(deadline, &format!("wait for the {what} job of {unit}"), |m| {
            m.member.as_deref() == Some("JobRemoved") && m.body.get(1).and_then(Value::as_str) == Some(job.as_str())
        })?;
        match m.body.get(3).and_then(Value::as_str) {
            Some("done") => Ok(()),
            result => Err(Error::new(format!("systemd {what} job for unit {unit} ended with result {:?} (see journalctl -u {unit})", result.unwrap_or("?")))),
        }
    }

    /// StartTransientUnit in mode "fail", and wait for its job. A unit of that name that
    /// exists may be a failed leftover: it is reset and the start tried once more, as by runc.
    pub fn start(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        let body = || vec![Value::str(unit), Value::str("fail"), properties::encode(props), Value::Array("(sa(sv))".into(), vec![])];
        let reply = match self.call_with_jobs("StartTransientUnit", body())? {
            Ok(r) => r,
            Err(e) if e.name == UNIT_EXISTS => {
                self.reset_failed(unit)?;
                match self.call_with_jobs("StartTransientUnit", body())? {
                    Ok(r) => r,
                    Err(e) if e.name == UNIT_EXISTS => {
                        return Err(Error::new(format!(
                            "systemd unit {unit} already exists and is not a failed leftover: another container (or something else) uses this cgroupsPath"
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        // The unit is ours now, whatever its job's result: a failed one is stopped and reset, so
        // that neither the unit nor its name is left.
        self.wait_job(&reply, unit, "start").inspect_err(|_| {
            let _ = self.stop(unit);
            let _ = self.reset_failed(unit);
        })
    }

    /// StopUnit and wait; a unit systemd no longer knows is already gone.
    pub fn stop(&mut self, unit: &str) -> Result<()> {
        match self.call_with_jobs("StopUnit", vec![Value::str(unit), Value::str("replace")])? {
            Ok(reply) => self.wait_job(&reply, unit, "stop"),
            Err(e) if e.name == NO_SUCH_UNIT => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// ResetFailedUnit: a failed unit stays loaded (and its name taken) until reset.
    pub fn reset_failed(&mut self, unit: &str) -> Result<()> {
        match self.call("ResetFailedUnit", vec![Value::str(unit)])? {
            Ok(_) => Ok(()),
            Err(e) if e.name == NO_SUCH_UNIT => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// SetUnitProperties at runtime (not persisted across a reboot: the unit is transient).
    pub fn set_properties(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        self.call("SetUnitProperties", vec![Value::str(unit), Value::Bool(true), properties::encode(props)])??;
        Ok(())
    }
}

/// What to do when the user's bus is not there: the user has no systemd manager running.
fn no_user_manager(path: &str) -> String {
    let uid = crate::linux::idmap::outer_uid().map_or_else(|_| "UID".to_string(), |u| u.to_string());
    format!(
        "rootless --systemd-cgroup: the user's bus {path} does not answer, so no systemd user manager (user@{uid}.service) is there to own the container's scope: \
         run in a login session of this user, or let its manager run without one (loginctl enable-linger <user>), and set XDG_RUNTIME_DIR=/run/user/{uid}; \
         or use the cgroupfs driver (no --systemd-cgroup)"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::dbus::message::Message;
    use crate::dbus::testbus::{fake_bus, reply, signal};

    const OK: &[u8] = b"OK 0123456789abcdef0123456789abcdef\r\n";
    const JOB: &str = "/org/freedesktop/systemd1/job/42";

    /// The bus daemon's own methods, and a job that ends with `result`.
    fn common(m: &Message, result: &str) -> Vec<Message> {
        match m.member.as_deref() {
            Some("Hello") => vec![reply(m, None, vec![Value::str(":1.9")])],
            Some("AddMatch") => vec![reply(m, None, vec![])],
            Some("StartTransientUnit" | "StopUnit") => {
                let unit = m.body[0].clone();
                vec![
                    reply(m, None, vec![Value::Path(JOB.into())]),
                    signal("JobRemoved", vec![Value::U32(42), Value::Path(JOB.into()), unit, Value::str(result)]),
                ]
            }
            _ => vec![reply(m, None, vec![])],
        }
    }

    #[test]
    fn start_waits_for_its_job() {
        let bus = fake_bus("start-ok", OK, |m| common(m, "done"));
        Manager::open(&bus).expect("connect").start("t-1.scope", &[("Delegate".into(), Value::Bool(true))]).expect("started");
    }

    #[test]
    fn a_failed_job_is_an_error_naming_unit_and_result() {
        let bus = fake_bus("start-failed", OK, |m| common(m, "failed"));
        let e = Manager::open(&bus).expect("connect").start("t-2.scope", &[]).expect_err("failed job").to_string();
        assert_eq!(e, "systemd start job for unit t-2.scope ended with result \"failed\" (see journalctl -u t-2.scope)");
    }

    #[test]
    fn an_existing_unit_is_reset_and_tried_once_more() {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        static RESETS: AtomicUsize = AtomicUsize::new(0);
        let bus = fake_bus("exists-once", OK, |m| match m.member.as_deref() {
            Some("StartTransientUnit") if STARTS.fetch_add(1, Ordering::SeqCst) == 0 => {
                vec![reply(m, Some(UNIT_EXISTS), vec![Value::str("Unit t-3.scope already exists.")])]
            }
            Some("ResetFailedUnit") => {
                RESETS.fetch_add(1, Ordering::SeqCst);
                vec![reply(m, None, vec![])]
            }
            _ => common(m, "done"),
        });
        Manager::open(&bus).expect("connect").start("t-3.scope", &[]).expect("started the second time");
        assert_eq!((STARTS.load(Ordering::SeqCst), RESETS.load(Ordering::SeqCst)), (2, 1));
    }

    #[test]
    fn an_active_unit_of_that_name_is_an_error() {
        let bus = fake_bus("exists-always", OK, |m| match m.member.as_deref() {
            Some("StartTransientUnit") => vec![reply(m, Some(UNIT_EXISTS), vec![Value::str("Unit t-4.scope already exists.")])],
            _ => common(m, "done"),
        });
        let e = Manager::open(&bus).expect("connect").start("t-4.scope", &[]).expect_err("exists").to_string();
        assert_eq!(e, "systemd unit t-4.scope already exists and is not a failed leftover: another container (or something else) uses this cgroupsPath");
    }

    #[test]
    fn other_errors_name_bus_method_and_error() {
        let bus = fake_bus("refused-prop", OK, |m| match m.member.as_deref() {
            Some("StartTransientUnit") => {
                vec![reply(m, Some("org.freedesktop.DBus.Error.PropertyReadOnly"), vec![Value::str("Cannot set property AllowedCPUs, or unknown property.")])]
            }
            _ => common(m, "done"),
        });
        let e = Manager::open(&bus).expect("connect").start("t-5.scope", &[]).expect_err("old systemd").to_string();
        assert_eq!(
            e,
            format!("d-bus {bus}: org.freedesktop.systemd1.Manager.StartTransientUnit: org.freedesktop.DBus.Error.PropertyReadOnly: Cannot set property AllowedCPUs, or unknown property.")
        );
    }

    #[test]
    fn cgroups_from_the_control_group_properties() {
        let bus = fake_bus("control-group", OK, |m| match (m.member.as_deref(), m.path.as_deref()) {
            (Some("GetUnit"), _) => vec![reply(m, None, vec![Value::Path("/org/freedesktop/systemd1/unit/testudo_2dc1_2escope".into())])],
            (Some("Get"), Some(PATH)) if m.body == [Value::str(IFACE), Value::str("ControlGroup")] => {
                vec![reply(m, None, vec![Value::variant(Value::str("/user.slice/user-2001.slice/user@2001.service"))])]
            }
            (Some("Get"), Some("/org/freedesktop/systemd1/unit/testudo_2dc1_2escope")) if m.body[0] == Value::str("org.freedesktop.systemd1.Scope") => {
                vec![reply(m, None, vec![Value::variant(Value::str("/user.slice/user-2001.slice/user@2001.service/user.slice/testudo-c1.scope"))])]
            }
            (Some("Get"), _) => vec![reply(m, None, vec![Value::variant(Value::str(""))])],
            _ => common(m, "done"),
        });
        let mut mgr = Manager::open(&bus).expect("connect");
        assert_eq!(mgr.control_group().expect("manager").as_str(), "/user.slice/user-2001.slice/user@2001.service");
        assert_eq!(mgr.unit_control_group("testudo-c1.scope").expect("scope"), "/user.slice/user-2001.slice/user@2001.service/user.slice/testudo-c1.scope");
        let e = mgr.unit_control_group("testudo-c1.slice").expect_err("no cgroup").to_string();
        assert_eq!(e, "systemd unit testudo-c1.slice has no cgroup (its ControlGroup is empty)");
    }

    #[test]
    fn stopping_a_unit_systemd_forgot_is_done() {
        let bus = fake_bus("stop-gone", OK, |m| match m.member.as_deref() {
            Some("StopUnit" | "ResetFailedUnit") => vec![reply(m, Some(NO_SUCH_UNIT), vec![Value::str("Unit t-6.scope not loaded.")])],
            _ => common(m, "done"),
        });
        let mut mgr = Manager::open(&bus).expect("connect");
        mgr.stop("t-6.scope").expect("stopped");
        mgr.reset_failed("t-6.scope").expect("reset");
    }
}
