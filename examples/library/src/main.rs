//! The library's server: `cargo run -p writ-example-library -- serve --data-dir DIR`.

use std::process::ExitCode;

use writ_app::{App, Module};
use writ_example_library::{Library, Reminders, read};

fn main() -> ExitCode {
    App::new()
        .module(
            Module::new::<Library>()
                .process::<Reminders>()
                .read_model(read::read_model()),
        )
        .run()
}
