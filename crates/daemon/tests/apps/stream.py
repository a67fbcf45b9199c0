class Body:
    def __init__(self, marker, fail):
        self.marker, self.fail, self.n = marker, fail, 0
    def __iter__(self):
        return self
    def __next__(self):
        self.n += 1
        if self.n == 2 and self.fail:
            raise RuntimeError("mid-stream")
        if self.n > 3:
            raise StopIteration
        return b"part%d;" % self.n
    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed")

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(environ["HTTP_X_MARKER"], environ["PATH_INFO"] == "/fail")
