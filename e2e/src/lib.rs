//! End-to-end tests live in `tests/`; this library will hold the helpers that
//! start the project's binaries (engine, control, analytics) as child processes.
