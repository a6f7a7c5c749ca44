//! The attribute columns a pane can show beside name, size and time (Alt+A, or `columns` and
//! `attributes` in the config's `[defaults]`): a leaf, so the pane, the config and the listing
//! view share the words without importing each other.

use serde::Deserialize;

/// An attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Column {
    /// The type and permission bits, `drwxr-xr-x`.
    Mode,
    /// The owner's name (or uid).
    Owner,
    /// The group's name (or gid).
    Group,
}

impl Column {
    /// The columns the attribute toggle shows unless the config names others.
    pub const ALL: [Column; 3] = [Column::Mode, Column::Owner, Column::Group];
}
