//! The `lightning` back-end port (see the parent module).
