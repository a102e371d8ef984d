//! Adapters behind the ports.
