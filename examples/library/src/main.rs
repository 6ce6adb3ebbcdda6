//! The library's server: `cargo run -p writ-example-library -- serve --data-dir DIR`.

use std::process::ExitCode;

use writ_app::{App, Module};
use writ_example_library::{Library, Reminders};

fn main() -> ExitCode {
    App::new()
        .module(Module::new::<Library>().process::<Reminders>())
        .run()
}
