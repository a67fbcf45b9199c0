import time
def application(environ, start_response):
    marker = environ["HTTP_X_MARKER"]
    start_response("200 OK", [])
    if environ["PATH_INFO"] == "/short":
        return [b"short"]
    def body():
        try:
            while True:
                yield b"x" * 65536
                time.sleep(0.01)
        finally:
            with open(marker, "w") as f:
                f.write("closed")
    return body()
