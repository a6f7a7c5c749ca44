//! What a transfer command's flags mean: [`TransferOptions`] and the conflict policy.

use std::io::IsTerminal;

use crate::engine::ConflictPolicy;

/// How `get` and `put` behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    pub recursive: bool,
    pub policy: ConflictPolicy,
    /// Connections used at once.
    pub jobs: usize,
    /// Delete each source once its copy is verified.
    pub remove_source: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The remote target was written with a trailing `/`: it must be an existing directory.
    pub dir_target: bool,
    /// One JSON object per file result and per entry left out on stdout, then a summary.
    pub json: bool,
    /// Symlinks and special files left out of a tree make the command fail (exit 23).
    pub strict: bool,
    /// Download names that would spoof other programs instead of refusing them.
    pub allow_unsafe_names: bool,
    /// Bytes per second the command may receive, and may send (`--limit-rate`); 0 for no
    /// limit.
    pub limit_rate: u64,
    /// Connections one big file is fetched over (`--streams`); 1 for one.
    pub streams: usize,
    /// The size from which a file goes over several streams (`--streams-from`).
    pub streams_from: u64,
}

impl TransferOptions {
    /// Options with a progress bar only when both output streams are terminals, so that
    /// scripts and pipes see nothing but errors.
    pub fn new(recursive: bool, policy: ConflictPolicy, jobs: usize) -> Self {
        Self {
            recursive,
            policy,
            jobs,
            remove_source: false,
            progress: std::io::stderr().is_terminal() && std::io::stdout().is_terminal(),
            dir_target: false,
            json: false,
            strict: false,
            allow_unsafe_names: false,
            limit_rate: 0,
            streams: crate::engine::DEFAULT_STREAMS,
            streams_from: crate::engine::DEFAULT_STREAMS_FROM,
        }
    }
}

/// The conflict policy chosen by the flags; failing is the default, as with `cp -n`'s
/// caution but loud.
pub fn policy_from_flags(
    overwrite: bool,
    skip: bool,
    resume: bool,
    rename: bool,
    update: bool,
) -> ConflictPolicy {
    if overwrite {
        ConflictPolicy::Overwrite
    } else if update {
        ConflictPolicy::OverwriteIfNewer
    } else if skip {
        ConflictPolicy::Skip
    } else if resume {
        ConflictPolicy::Resume
    } else if rename {
        ConflictPolicy::Rename
    } else {
        ConflictPolicy::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_one_policy() {
        assert_eq!(
            policy_from_flags(false, false, false, false, false),
            ConflictPolicy::Fail
        );
        assert_eq!(
            policy_from_flags(true, false, false, false, false),
            ConflictPolicy::Overwrite
        );
        assert_eq!(
            policy_from_flags(false, true, false, false, false),
            ConflictPolicy::Skip
        );
        assert_eq!(
            policy_from_flags(false, false, true, false, false),
            ConflictPolicy::Resume
        );
        assert_eq!(
            policy_from_flags(false, false, false, true, false),
            ConflictPolicy::Rename
        );
        assert_eq!(
            policy_from_flags(false, false, false, false, true),
            ConflictPolicy::OverwriteIfNewer
        );
    }
}
