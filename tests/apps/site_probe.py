"""Test app: echoes what an --include-file and express's defaults give it."""


def application(environ, start_response):
    body = "".join(
        "%s=%s\n" % (k, environ.get(k))
        for k in ("HTTP_AUTHORIZATION", "FROM_INCLUDE", "PATH_INFO")
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
