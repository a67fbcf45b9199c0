//! Writing to standard output and error without panicking.
//!
//! `println!` and `eprintln!` panic when the write fails: with `express … | head`, a `tee`
//! that died, or a closed ssh session, standard output and error are a pipe nobody reads
//! (EPIPE) or a hung-up terminal (EIO). A panic there must never stop `express` from doing
//! its job (forwarding a stop to httpd), so everything it prints goes through
//! [`outln!`](crate::outln) and [`errln!`](crate::errln), which drop a line that cannot be
//! written.

use std::fmt;
use std::io::Write as _;

/// Writes one line to standard output; a failed write is ignored.
pub fn write_out(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{args}");
}

/// Writes one line to standard error; a failed write is ignored.
pub fn write_err(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `println!` that never panics (see the [module](crate::out) docs).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the [module](crate::out) docs).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!($($arg)*))
    };
}
