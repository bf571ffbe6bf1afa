// Stamp the git commit into `--version` (Docker and go-runc parse the "commit:" line).
fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TESTUDO_COMMIT={commit}");
    // Where git keeps HEAD and the branch's ref: in a worktree `.git` is a file, and a path that
    // does not exist makes cargo run this again, and rebuild the binary, on every build; the
    // whole refs/heads changes whenever any worktree commits.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"]).unwrap_or_else(|| ".git/HEAD".to_string())];
    if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|r| r.starts_with("refs/")) {
        let loose = git(&["rev-parse", "--git-path", &branch]).filter(|p| std::path::Path::new(p).exists());
        watched.extend(loose.or_else(|| git(&["rev-parse", "--git-path", "packed-refs"])));
    }
    for path in watched {
        println!("cargo:rerun-if-changed={path}");
    }
}
