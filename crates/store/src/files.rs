//! Private files (SPEC §9 "Files"): everything Outguard keeps on disk — the SQLite store and its
//! `-wal`/`-shm`, spool files (message bodies), TLS keys and certificates, counter snapshots —
//! is readable by its owner only, whatever the umask: directories `0700`, files `0600`.
//!
//! Why: the store holds password hashes, webhook secrets, UI CSRF tokens and raw reports, the
//! spool holds customers' mail; under the usual umask 022 they came out world-readable. New
//! files get the mode at creation (no window where they are wider); [`tighten_tree`] fixes data
//! dirs made by older versions, at start-up.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of every directory Outguard creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Outguard creates.
pub const FILE_MODE: u32 = 0o600;

/// `mkdir -p` with `0700` for each directory it creates.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// `OpenOptions` whose files are created `0600` (the umask can only narrow that further).
pub fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Clears the group and other bits of `path` if any is set (never follows a symlink).
/// Returns whether it changed anything; a missing file is not an error.
pub fn tighten(path: &Path) -> io::Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Ok(false);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode & !0o077))?;
    Ok(true)
}

/// [`tighten`] on `root` and everything under it; returns how many entries were changed.
/// Symlinks are neither changed nor followed.
pub fn tighten_tree(root: &Path) -> io::Result<u64> {
    let mut changed = u64::from(tighten(root)?);
    if !std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        return Ok(changed);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            changed += u64::from(tighten(&path)?);
            if entry.file_type()?.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_old_trees_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b");
        create_private_dir_all(&deep).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&deep)), (0o700, 0o700));
        let f = deep.join("f");
        private_options()
            .write(true)
            .create_new(true)
            .open(&f)
            .unwrap();
        assert_eq!(mode(&f), 0o600);

        let old = tmp.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o755)).unwrap();
        let g = old.join("g");
        std::fs::write(&g, b"x").unwrap();
        std::fs::set_permissions(&g, Permissions::from_mode(0o644)).unwrap();
        let n = tighten_tree(tmp.path()).unwrap();
        assert!(n >= 2, "{n}");
        assert_eq!((mode(&old), mode(&g)), (0o700, 0o600));
        assert_eq!(
            tighten_tree(tmp.path()).unwrap(),
            0,
            "nothing left to change"
        );
    }
}
