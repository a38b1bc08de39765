//! The `assets` back-end port (see the parent module).
