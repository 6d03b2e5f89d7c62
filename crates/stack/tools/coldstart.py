#!/usr/bin/env python3
"""Cold start of the listener Lambda, measured with a local Lambda runtime API.

Starts the listener binary as Lambda would (AWS_LAMBDA_RUNTIME_API pointing at a small runtime API
server here), with its AWS calls going to the moto server (the SSM secret read at start), and
times, for each of N fresh processes:
  init   process start -> the runtime's first `GET /runtime/invocation/next` (settings, AWS config,
         the SSM secret: what Lambda bills as Init Duration)
  first  process start -> the response of the first invocation (a signed GitHub `ping`)

Usage: coldstart.py BINARY [RUNS]   (needs SLIPWAY_TEST_MOTO_URL: source tests/services.sh start)
Run with /opt/slipway-venv/bin/python (boto3 comes with moto).
"""
import hashlib
import hmac
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

import boto3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))


class Runtime(http.server.BaseHTTPRequestHandler):
    """The two calls of the Lambda runtime API a function makes per invocation."""

    event = b""
    first_next = None
    response = None
    done = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            if Runtime.first_next is None:
                Runtime.first_next = time.perf_counter()
            elif Runtime.done.is_set():
                # One invocation per process: hold the runtime until it is killed.
                time.sleep(30)
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:slipway-listener",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(Runtime.event)))
            self.end_headers()
            self.wfile.write(Runtime.event)
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if "/response" in self.path and Runtime.response is None:
            Runtime.response = (time.perf_counter(), body)
            Runtime.done.set()
        elif "/error" in self.path:
            Runtime.response = (time.perf_counter(), b"ERROR " + body)
            Runtime.done.set()
        self.send_response(202)
        self.end_headers()


def ping_event(secret: str) -> bytes:
    with open(os.path.join(ROOT, "tests/fixtures/github/ping.json"), "rb") as f:
        body = f.read().decode()
    sig = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "version": "2.0",
            "routeKey": "POST /hooks/github",
            "rawPath": "/hooks/github",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/json",
                "user-agent": "GitHub-Hookshot/0000000",
                "x-github-event": "ping",
                "x-github-delivery": str(uuid.uuid4()),
                "x-hub-signature-256": sig,
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdef1234",
                "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abcdef1234",
                "http": {
                    "method": "POST",
                    "path": "/hooks/github",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.30.252.1",
                    "userAgent": "GitHub-Hookshot/0000000",
                },
                "requestId": "coldstart",
                "routeKey": "POST /hooks/github",
                "stage": "$default",
                "time": "25/Nov/2026:12:00:00 +0000",
                "timeEpoch": 1764072000000,
            },
            "body": body,
            "isBase64Encoded": False,
        }
    ).encode()


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    moto = os.environ.get("SLIPWAY_TEST_MOTO_URL")
    if not moto:
        sys.exit("SLIPWAY_TEST_MOTO_URL is not set: source tests/services.sh start")
    aws = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    secret = uuid.uuid4().hex
    param = f"/slipway-coldstart/{uuid.uuid4().hex[:8]}/webhook-secret"
    boto3.client("ssm", endpoint_url=moto, **aws).put_parameter(Name=param, Value=secret, Type="SecureString")
    queue = boto3.client("sqs", endpoint_url=moto, **aws).create_queue(
        QueueName=f"coldstart-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    Runtime.event = ping_event(secret)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "slipway-listener",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/slipway-listener",
        "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto,
        "RUST_LOG": "warn",
        "SLIPWAY_QUEUE_URL": queue,
        "SLIPWAY_WEBHOOK_SECRET_PARAM": param,
        "SLIPWAY_REPOSITORIES": "*",
    }
    inits, firsts = [], []
    for _ in range(runs):
        Runtime.first_next, Runtime.response = None, None
        Runtime.done.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not Runtime.done.wait(10):
            proc.kill()
            sys.exit("no response in 10 s: " + proc.stderr.read().decode()[-2000:])
        proc.kill()
        proc.wait()
        at, body = Runtime.response
        reply = json.loads(body)
        if reply.get("statusCode") != 200 or "pong" not in reply.get("body", ""):
            sys.exit(f"unexpected reply: {body[:500]!r}")
        inits.append((Runtime.first_next - start) * 1000)
        firsts.append((at - start) * 1000)
    server.shutdown()
    size = os.path.getsize(binary)
    print(f"binary {binary} ({size / 1e6:.1f} MB), {runs} cold starts")
    for name, xs in (("init (start -> first /next)", inits), ("first response (start -> ping answered)", firsts)):
        xs = sorted(xs)
        print(f"{name}: median {statistics.median(xs):.1f} ms, p90 {xs[int(len(xs) * 0.9) - 1]:.1f} ms, max {xs[-1]:.1f} ms")


if __name__ == "__main__":
    main()
