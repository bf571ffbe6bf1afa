//! User names from /etc/passwd itself. getpwuid(3) in our static binary loads the NSS modules
//! nsswitch.conf names (`files systemd` on Debian), and with a uid /etc/passwd does not have it
//! crashed in the systemd module: `list` segfaulted on a container directory owned by such a
//! uid. A user only another NSS source knows has no name here; callers show the number.

/// The name /etc/passwd gives `uid`.
pub fn name(uid: u32) -> Option<String> {
    name_in(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

fn name_in(passwd: &str, uid: u32) -> Option<String> {
    let uid = uid.to_string();
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_by_the_third_field() {
        let p = "root:x:0:0:root:/root:/bin/bash\n#comment\nbad\ntestudo-rl:x:1001:1001::/home/t:/bin/sh\n";
        assert_eq!(super::name_in(p, 0).as_deref(), Some("root"));
        assert_eq!(super::name_in(p, 1001).as_deref(), Some("testudo-rl"));
        assert_eq!(super::name_in(p, 54321), None);
    }
}
