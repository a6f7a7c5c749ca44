//! Entry points for the fuzz targets in `fuzz/`, hidden from the docs and not part of the API:
//! they reach the server's private path resolution without a socket in between.

use std::io;
use std::path::Path;

use cap_std::fs::OpenOptions;
use ferry_protocol::ErrorCode;

use crate::root::{RemotePath, Root};

/// The server's path resolution beneath an open root, exactly as every op uses it.
#[derive(Debug)]
pub struct Resolver {
    root: Root,
}

impl Resolver {
    /// Opens `root` the way [`crate::run`] does.
    pub fn open(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: Root::open(root)?,
        })
    }

    /// Checks `wire` and `lstat`s it beneath the root; the wire error code on refusal.
    pub fn stat(&self, wire: &str) -> Result<(), ErrorCode> {
        let path = RemotePath::parse(wire).map_err(|err| err.code)?;
        self.root
            .symlink_metadata(&path)
            .map(drop)
            .map_err(|err| err.code)
    }

    /// Checks `wire` and creates it beneath the root: with `dir`, a directory and its missing
    /// parents (`mkdir -p`); otherwise an empty file in its existing parent, as `put` does.
    pub fn create(&self, wire: &str, dir: bool) -> Result<(), ErrorCode> {
        let path = RemotePath::parse(wire).map_err(|err| err.code)?;
        if dir {
            return self
                .root
                .create_dir_all(&path, None)
                .map_err(|err| err.code);
        }
        let (parent, name) = self.root.open_parent(&path).map_err(|err| err.code)?;
        let mut options = OpenOptions::new();
        options.write(true).create(true);
        parent
            .open_with(name, &options)
            .map(drop)
            .map_err(|err| crate::error::code_of(&err))
    }
}
