//! Setting a file's or directory's modification time and permission bits without following a
//! symlink, for the server's `attrs` and a sync's local destination alike. The entry is opened
//! `O_PATH | O_NOFOLLOW`, checked on that handle, and changed through `/proc/self/fd`, so a
//! link swapped in between the check and the change is not followed either (Linux has no
//! `fchmodat` that refuses a final symlink before 6.6, and this is how glibc does it too).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, UTIME_OMIT};

/// Why attributes were not set.
#[derive(Debug)]
pub enum AttrsError {
    /// The entry is a symlink: never changed, never followed.
    Symlink,
    /// A fifo, socket or device.
    Special,
    Io(io::Error),
}

impl From<rustix::io::Errno> for AttrsError {
    fn from(errno: rustix::io::Errno) -> Self {
        AttrsError::Io(io::Error::from(errno))
    }
}

/// Sets `mtime` (seconds since the epoch; the access time is left alone) and/or `mode` on the
/// regular file or directory `name` in `dir` (`rustix::fs::CWD` with a whole path works too).
pub fn set_attrs_nofollow<Fd: AsFd, P: rustix::path::Arg>(
    dir: Fd,
    name: P,
    mtime: Option<i64>,
    mode: Option<u32>,
) -> Result<(), AttrsError> {
    let handle = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match FileType::from_raw_mode(rustix::fs::fstat(&handle)?.st_mode) {
        FileType::RegularFile | FileType::Directory => {}
        FileType::Symlink => return Err(AttrsError::Symlink),
        _ => return Err(AttrsError::Special),
    }
    // The magic link names the inode opened above, whatever the name now leads to.
    let through = format!("/proc/self/fd/{}", handle.as_raw_fd());
    if let Some(mode) = mode {
        rustix::fs::chmodat(
            rustix::fs::CWD,
            &through,
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )?;
    }
    if let Some(mtime) = mtime {
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, &through, &times, AtFlags::empty())?;
    }
    Ok(())
}
