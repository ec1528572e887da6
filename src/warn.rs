//! Warnings: printed as one line each on stderr as they happen and counted, so the command can exit 1.

use parking_lot::Mutex;

#[derive(Default)]
pub struct Warnings {
    list: Mutex<Vec<String>>,
    quiet: bool,
}

impl Warnings {
    pub fn new(quiet: bool) -> Self {
        Warnings {
            list: Mutex::new(Vec::new()),
            quiet,
        }
    }

    /// Records a warning and prints it unless quiet.
    pub fn warn(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.quiet {
            eprintln!("clc: warning: {msg}");
        }
        self.list.lock().push(msg);
    }

    pub fn count(&self) -> usize {
        self.list.lock().len()
    }

    pub fn all(&self) -> Vec<String> {
        self.list.lock().clone()
    }
}
