//! The `clc` binary: parse arguments, call the library, map errors to one line and an exit code
//! (0 ok, 1 finished with warnings, 2 error).

mod cli;

use clap::Parser;

fn main() {
    // Die quietly on a closed pipe (`clc list … | head`), as other command-line tools do.
    // SAFETY: setting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli::run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clc: error: {}", one_line(&e));
            2
        }
    };
    std::process::exit(code);
}

fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
