//! Headers in and out. `/headers` answers `KEY=VALUE` lines: the request's `X-Probe` and
//! `X-Multi` headers (read with `req.header`), and every header `req.headers()` lists; the
//! response carries `X-Answer` and two separate `Set-Cookie` headers.

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
        _ => Response::text(404, "not found\n"),
    }
}

rswsgi::export!(application);
