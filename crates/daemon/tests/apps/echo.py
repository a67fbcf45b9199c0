def application(environ, start_response):
    inp = environ["wsgi.input"]
    mode = environ["PATH_INFO"]
    if mode == "/all":
        body = inp.read()
    elif mode == "/pieces":
        parts = []
        while True:
            part = inp.read(300000)
            if not part:
                break
            parts.append(part)
        body = b"".join(parts)
    elif mode == "/lines":
        first = inp.readline()
        second = inp.readline(3)
        rest = list(inp)
        body = b"|".join([first, second] + rest)
    elif mode == "/readlines":
        body = b"|".join(inp.readlines())
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body, inp.read()]
