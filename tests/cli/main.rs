//! Integration tests of the `rok-plan` command line: every test runs the real binary.

mod corpus;
mod graph;
mod params;
mod plan;
mod schema;
mod shipped;
mod support;
mod valid;
