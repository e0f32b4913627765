#!/usr/bin/env python3
"""A smart-HTTP git server over TLS for assay's integration tests.

git's own `git http-backend` (CGI) serves the repositories under ROOT; Python's
http.server and ssl (OpenSSL) put it behind HTTPS on a loopback port chosen by
the kernel. With USER:PASSWORD, every request needs that HTTP basic
authentication (401 otherwise), as a private GitHub/GitLab repository does.

Usage: git_https_server.py ROOT CERT KEY [USER:PASSWORD]
Prints "port N" on stdout once it listens; serves until killed.
"""

import base64
import http.server
import os
import shutil
import ssl
import subprocess
import sys

ROOT, CERT, KEY = sys.argv[1:4]
AUTH = sys.argv[4] if len(sys.argv) > 4 else None
BACKEND = next(
    p
    for p in (
        shutil.which("git-http-backend"),
        "/usr/lib/git-core/git-http-backend",
        "/usr/local/libexec/git-core/git-http-backend",
    )
    if p and os.path.exists(p)
)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        # One line per request on stderr: the tests read it to see what was asked.
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def serve(self):
        user = ""
        if AUTH is not None:
            given = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(AUTH.encode()).decode()
            if given != want:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            user = AUTH.split(":", 1)[0]
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        data = self.body() if self.command == "POST" else b""
        env["CONTENT_LENGTH"] = str(len(data))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run([BACKEND], input=data, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = serve
    do_POST = serve


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("port", server.server_address[1], flush=True)
server.serve_forever()
