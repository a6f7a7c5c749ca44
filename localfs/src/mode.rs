//! The process's umask, which both programs take off the bits of the files they create, as
//! `open(2)` would have.

use std::sync::OnceLock;

/// This process's umask, read once. Read from `/proc/self/status` because `umask(2)` can only
/// be read by setting it, which would race with other threads creating files meanwhile;
/// without procfs, the usual `022`.
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| parse_umask(&status))
            .unwrap_or(0o022)
    })
}

/// The `Umask:` line of a `/proc/<pid>/status` text, permission bits only.
fn parse_umask(status: &str) -> Option<u32> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix("Umask:")?;
        u32::from_str_radix(value.trim(), 8)
            .ok()
            .map(|mask| mask & 0o777)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_lines_are_read_as_octal() {
        let status = "Name:\tferry\nUmask:\t0027\nState:\tR (running)\n";
        assert_eq!(parse_umask(status), Some(0o027));
        assert_eq!(parse_umask("Name:\tferry\n"), None);
        assert_eq!(parse_umask("Umask:\tzz\n"), None);
        assert_eq!(parse_umask("Umask:\t7777\n"), Some(0o777));
    }

    #[test]
    fn this_process_has_a_umask_of_permission_bits() {
        assert_eq!(umask() & !0o777, 0);
    }
}
