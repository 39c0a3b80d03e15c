//! Nothing but its build script's output.
