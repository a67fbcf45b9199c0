//! The export glue driven through the C ABI by an in-test host, as the daemon drives it.

use std::ffi::c_void;
use std::io::{Read, Write};

use rswsgi::abi::{status, Bytes, HandlerTable, HostRequest, Pair, ABI_MAGIC, ABI_VERSION};
use rswsgi::{Request, Response};

#[derive(Default)]
struct Recorded {
    body_in: Vec<u8>,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    out: Vec<u8>,
    logs: Vec<String>,
}

unsafe extern "C" fn read_body(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    // SAFETY: ctx is the test's Recorded; buf is valid for len bytes.
    let rec = unsafe { &mut *ctx.cast::<Recorded>() };
    let n = rec.body_in.len().min(len).min(3);
    // SAFETY: n <= len.
    unsafe { std::ptr::copy_nonoverlapping(rec.body_in.as_ptr(), buf, n) };
    rec.body_in.drain(..n);
    n as isize
}

unsafe extern "C" fn start_response(
    ctx: *mut c_void,
    code: u16,
    _: Bytes,
    h: *const Pair,
    n: usize,
) -> i32 {
    // SAFETY: ctx is the test's Recorded; h is valid for n pairs during the call.
    let rec = unsafe { &mut *ctx.cast::<Recorded>() };
    rec.status = Some(code);
    // SAFETY: h is valid for n pairs during the call.
    let pairs = unsafe { std::slice::from_raw_parts(h, n) };
    for p in pairs {
        // SAFETY: pair bytes are valid during the call.
        let (k, v) = unsafe { (p.name.as_slice(), p.value.as_slice()) };
        rec.headers.push((
            String::from_utf8_lossy(k).into(),
            String::from_utf8_lossy(v).into(),
        ));
    }
    0
}

unsafe extern "C" fn write_body(ctx: *mut c_void, data: Bytes) -> i32 {
    // SAFETY: ctx is the test's Recorded; data is valid during the call.
    let rec = unsafe { &mut *ctx.cast::<Recorded>() };
    // SAFETY: data is valid during the call.
    let data = unsafe { data.as_slice() };
    rec.out.extend_from_slice(data);
    0
}

unsafe extern "C" fn log(ctx: *mut c_void, _: u32, msg: Bytes) {
    // SAFETY: ctx is the test's Recorded; msg is valid during the call.
    let rec = unsafe { &mut *ctx.cast::<Recorded>() };
    // SAFETY: msg is valid during the call.
    let msg = unsafe { msg.as_slice() };
    rec.logs.push(String::from_utf8_lossy(msg).into());
}

fn app(req: &mut Request) -> Response<'_> {
    match req.path_info() {
        "/echo" => {
            let mut data = Vec::new();
            req.body().read_to_end(&mut data).unwrap();
            Response::new(200)
                .with_header("X-Len", data.len().to_string())
                .with_body(data)
        }
        "/stream" => Response::stream(200, |out| {
            out.write_all(b"a")?;
            out.write_all(b"b")
        }),
        "/stream-echo" => {
            Response::stream(200, move |out| std::io::copy(req.body(), out).map(drop))
        }
        "/panic" => panic!("boom"),
        _ => Response::text(404, format!("no {}", req.header("x-thing").unwrap_or("-"))),
    }
}

rswsgi::export!(app);

fn call(path: &str, body: &[u8]) -> (i32, Recorded) {
    // SAFETY: the export macro returns a pointer to a static table.
    let table: &HandlerTable = unsafe { &*rswsgi_handler_table() };
    assert_eq!((table.magic, table.abi_version), (ABI_MAGIC, ABI_VERSION));
    let env: Vec<(&[u8], &[u8])> =
        vec![(b"PATH_INFO", path.as_bytes()), (b"HTTP_X_THING", b"thing")];
    let pairs: Vec<Pair> = env
        .iter()
        .map(|(k, v)| Pair {
            name: Bytes::new(k),
            value: Bytes::new(v),
        })
        .collect();
    let mut rec = Recorded {
        body_in: body.to_vec(),
        ..Default::default()
    };
    let host = HostRequest {
        ctx: (&mut rec as *mut Recorded).cast(),
        environ: pairs.as_ptr(),
        environ_len: pairs.len(),
        read_body,
        start_response,
        write_body,
        log,
    };
    // SAFETY: host and everything it points to outlive the call.
    let rc = unsafe { (table.handle)(&host) };
    (rc, rec)
}

#[test]
fn whole_body_gets_content_length() {
    let (rc, rec) = call("/echo", b"hello world");
    assert_eq!(rc, status::OK);
    assert_eq!(rec.status, Some(200));
    assert_eq!(rec.out, b"hello world");
    assert!(rec
        .headers
        .contains(&("Content-Length".into(), "11".into())));
    assert!(rec.headers.contains(&("X-Len".into(), "11".into())));
}

#[test]
fn streamed_body_and_headers_by_name() {
    assert_eq!(call("/stream", b"").1.out, b"ab");
    assert_eq!(call("/stream-echo", b"0123456789").1.out, b"0123456789");
    let (_, rec) = call("/nope", b"");
    assert_eq!(
        (rec.status, rec.out.as_slice()),
        (Some(404), &b"no thing"[..])
    );
}

#[test]
fn panic_is_reported_not_unwound() {
    let (rc, rec) = call("/panic", b"");
    assert_eq!(rc, status::PANICKED);
    assert_eq!(rec.status, None);
    assert!(
        rec.logs.iter().any(|l| l.contains("boom")),
        "{:?}",
        rec.logs
    );
}
