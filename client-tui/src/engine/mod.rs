//! The transfer engine (being written).
