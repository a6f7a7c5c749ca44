//! `ferry://` locations (being written).
