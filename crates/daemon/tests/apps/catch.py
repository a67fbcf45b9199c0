def application(environ, start_response):
    try:
        data = environ["wsgi.input"].read()
        text = b"read %d" % len(data)
    except OSError as e:
        text = ("OSError: %s" % e).encode()
    start_response("200 OK", [])
    return [text]
