//! The `ark` back-end port (see the parent module).
