//! The same behaviours through `kubectl`.
