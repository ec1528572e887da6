//! The `clc` binary: parse arguments, call the library, map errors to one line and an exit code
//! (0 ok, 1 finished with warnings, 2 error).

#![forbid(unsafe_code)]

mod cli;

/// glibc's malloc, or mimalloc for a pack (src/heap.rs).
#[global_allocator]
static HEAP: clc::heap::Switch = clc::heap::Switch;

use clap::Parser;

fn main() {
    // `clc` as the child that probes one OpenCL driver (src/gpu/icd.rs): answers and exits.
    clc::gpu::probe_child_main();
    clc::sys::default_sigpipe();
    // `clc mount` through a command line of `mount` alone: building every subcommand's arguments cost a
    // warm mount ~0.2 ms of its start (BENCHMARKS.md 5.13); same help and errors (tests/output.rs).
    let parsed = if std::env::args_os().nth(1).is_some_and(|a| a == "mount") {
        cli::MountCli::try_parse().map(|m| {
            let cli::MountOnly::Mount(a) = m.cmd;
            cli::Cli {
                cmd: cli::Cmd::Mount(a),
            }
        })
    } else {
        cli::Cli::try_parse()
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if matches!(cli.cmd, cli::Cmd::Pack(_)) {
        // glibc's malloc or mimalloc, by the cores (src/heap.rs says why). No thread has started yet.
        clc::heap::for_pack();
    } else {
        // Readers of archives allocate and free decoded frames (1 to 16 MiB) on many threads. With
        // glibc's sliding mmap threshold, freeing one such buffer raises the threshold above its size,
        // and from then on they come from per-thread arenas, which keep them after they are freed: on
        // 16 cores extract's resident size ran 80 MiB past CACHE_SIZE. A fixed 1 MiB threshold maps every
        // large buffer and gives it back when freed. No thread has started yet.
        clc::sys::fix_mmap_threshold(1 << 20);
    }
    let code = match cli::run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clc: error: {}", one_line(&e));
            2
        }
    };
    // Without the drivers' exit handlers (their teardown is the process's end anyway).
    clc::diag::trace::note("exit");
    clc::sys::exit_now(code);
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
