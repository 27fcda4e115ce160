"""A small MCP server for the tests, with no third-party packages.

`python3 mcp_server.py stdio` speaks JSON-RPC on stdin/stdout, one message a line.
`python3 mcp_server.py http` serves streamable HTTP (plain JSON answers) on 127.0.0.1 at
`/mcp` (port `$MCP_PORT`, else any), prints its port on the first line of stdout, and refuses requests whose
`Authorization` header is not `Bearer $MCP_TOKEN`.

Every start and every tool call is appended to the file `$MCP_LOG` as a JSON line, so tests
see what reached the server. Tools: `lookup` (read-only; text and an image), `write_note`
(acts), `add_tool` (adds the tool `fresh` and sends notifications/tools/list_changed), `big`
(100 000 characters of text and an embedded resource) and `slow` (answers after 3 s).
"""

import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = os.environ.get("MCP_LOG")
LOCK = threading.Lock()
STATE = {"fresh": False}
# A one-pixel PNG, base64.
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def log(entry):
    if not LOG:
        return
    with LOCK:
        with open(LOG, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


def tools():
    listed = [
        {
            "name": "lookup",
            "description": "Looks a word up in the test dictionary.",
            "inputSchema": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "The word."}},
                "required": ["query"],
            },
            "annotations": {"readOnlyHint": True},
        },
        {
            "name": "write_note",
            "description": "Writes a note on the server.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            "annotations": {"readOnlyHint": False, "destructiveHint": False},
        },
        {
            "name": "add_tool",
            "description": "Adds a tool to this server.",
            "inputSchema": {"type": "object", "properties": {}},
        },
    ]
    for name, description in [
        ("big", "Returns a very long text."),
        ("slow", "Answers after three seconds."),
    ]:
        listed.append(
            {
                "name": name,
                "description": description,
                "inputSchema": {"type": "object", "properties": {}},
                "annotations": {"readOnlyHint": True},
            }
        )
    if STATE["fresh"]:
        listed.append(
            {
                "name": "fresh",
                "description": "A tool that appeared while the server ran.",
                "inputSchema": {"type": "object", "properties": {}},
                "annotations": {"readOnlyHint": True},
            }
        )
    return listed


def text(value):
    return {"content": [{"type": "text", "text": value}], "isError": False}


def call(name, arguments, notify):
    log({"call": name, "arguments": arguments, "pid": os.getpid()})
    if name == "lookup":
        query = arguments.get("query", "")
        return {
            "content": [
                {"type": "text", "text": f"LOOKUP {query}: a word from pid {os.getpid()}"},
                {"type": "image", "data": PIXEL, "mimeType": "image/png"},
            ],
            "isError": False,
        }
    if name == "write_note":
        return text(f"noted: {arguments.get('text', '')}")
    if name == "add_tool":
        STATE["fresh"] = True
        notify({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return text("the tool `fresh` was added")
    if name == "big":
        return {
            "content": [
                {
                    "type": "resource",
                    "resource": {"uri": "file:///notes.txt", "mimeType": "text/plain", "text": "notes"},
                },
                {"type": "text", "text": "x" * 100000},
            ],
            "isError": False,
        }
    if name == "slow":
        time.sleep(3)
        return text("finally")
    if name == "fresh" and STATE["fresh"]:
        return text("fresh works")
    return {"content": [{"type": "text", "text": f"unknown tool {name}"}], "isError": True}


def handle(message, notify):
    """The answer to one JSON-RPC message, or None for a notification."""
    method = message.get("method")
    if "id" not in message:
        return None
    identifier = message["id"]
    params = message.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "test-server", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": tools()}
    elif method == "tools/call":
        result = call(params.get("name"), params.get("arguments") or {}, notify)
    elif method == "ping":
        result = {}
    else:
        return {
            "jsonrpc": "2.0",
            "id": identifier,
            "error": {"code": -32601, "message": f"no method {method}"},
        }
    return {"jsonrpc": "2.0", "id": identifier, "result": result}


def serve_stdio():
    def send(message):
        with LOCK:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        answer = handle(json.loads(line), send)
        if answer is not None:
            send(answer)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        expected = "Bearer " + os.environ.get("MCP_TOKEN", "")
        if self.headers.get("Authorization") != expected:
            self.reply(401, {"error": "unauthorized"})
            return False
        return True

    def do_GET(self):
        # No server-to-client stream: notifications are not sent over HTTP here.
        self.reply(405)

    def do_DELETE(self):
        self.reply(200)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if not self.authorized():
            return
        message = json.loads(body)
        answer = handle(message, lambda _notification: None)
        if answer is None:
            self.reply(202)
            return
        headers = []
        if message.get("method") == "initialize":
            headers.append(("Mcp-Session-Id", "session-1"))
        self.reply(200, answer, headers)


def serve_http():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("MCP_PORT", "0"))), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    log({"start": os.getpid()})
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        serve_stdio()
