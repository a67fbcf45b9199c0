//! A native rswsgi handler: `express start-server examples/native/wsgi.rs`.
//!
//! Routes: `/` hello, `/json` a JSON document built by hand, `/echo` streams the request body
//! back, `/stream` sends five lines 200 ms apart.

use std::io::Write;
use std::time::Duration;

use rswsgi::{Request, Response};

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub fn application(req: &mut Request) -> Response<'_> {
    match (req.method(), req.path_info()) {
        (_, "/") => Response::text(200, "Hello from Rust!\n"),
        (_, "/json") => {
            let body = format!(
                "{{\"method\":\"{}\",\"path\":\"{}\",\"query\":\"{}\",\"request_id\":\"{}\"}}",
                json_escape(req.method()),
                json_escape(&req.path()),
                json_escape(req.query_string()),
                json_escape(req.request_id()),
            );
            Response::new(200)
                .with_header("Content-Type", "application/json")
                .with_body(body.into_bytes())
        }
        // Streams the request body back as it arrives, never holding it whole.
        ("POST", "/echo") => {
            Response::stream(200, move |out| std::io::copy(req.body(), out).map(drop))
                .with_header("Content-Type", "application/octet-stream")
        }
        (_, "/stream") => Response::stream(200, |out| {
            for i in 1..=5 {
                writeln!(out, "line {i}")?;
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        })
        .with_header("Content-Type", "text/plain"),
        (_, "/panic") => panic!("this route panics on purpose"),
        _ => Response::text(404, "not found\n"),
    }
}

rswsgi::export!(application);
