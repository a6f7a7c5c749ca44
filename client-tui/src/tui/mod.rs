//! The two-pane terminal interface (being written).
