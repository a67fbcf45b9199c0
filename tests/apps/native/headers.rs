//! Headers in and out. `/headers` answers `KEY=VALUE` lines: the request's `X-Probe` and
//! `X-Multi` headers (read with `req.header`), and every header `req.headers()` lists; the
//! response carries `X-Answer` and two separate `Set-Cookie` headers. `/declared` streams
//! a body with its own `Content-Length: 10` in two writes of 5 bytes, then (with `?extra`)
//! tries to write 3 bytes more. `/status-header` answers with a `Status` header, which the
//! module refuses (the native backend passes headers on as they are).

use std::io::Write;

use rswsgi::{Request, Response};

pub fn application(req: &mut Request) -> Response<'_> {
    match req.path_info() {
        "/headers" => {
            let probe = req.header("x-probe").unwrap_or("(none)").to_owned();
            let mut body = format!(
                "probe={probe}\nmulti={}\ncontent_type={}\n",
                req.header("X-Multi").unwrap_or("(none)"),
                req.header("Content-Type").unwrap_or("(none)"),
            );
            for (name, value) in req.headers() {
                body.push_str(&format!("header:{name}={value}\n"));
            }
            Response::text(200, body)
                .with_header("X-Answer", format!("got {probe}"))
                .with_header("Set-Cookie", "a=1; Path=/")
                .with_header("Set-Cookie", "b=2; Path=/; HttpOnly")
        }
        "/declared" => {
            let extra = req.query_string() == "extra";
            Response::stream(200, move |out| {
                out.write_all(b"01234")?;
                out.write_all(b"56789")?;
                if extra {
                    out.write_all(b"abc")?;
                }
                Ok(())
            })
            .with_header("Content-Length", "10")
        }
        "/status-header" => {
            Response::text(200, "status header accepted\n").with_header("Status", "404 Not Found")
        }
        _ => Response::text(404, "not found\n"),
    }
}

rswsgi::export!(application);
