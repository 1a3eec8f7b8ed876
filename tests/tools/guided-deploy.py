#!/usr/bin/env python3
"""Drives `sam deploy --guided` on the repository's template in a pseudo-terminal, answering as
docs/operations.md says (Enter everywhere, `y` to the three public function URLs), with dummy
credentials and every AWS endpoint on a loopback listener that records what SAM asks of AWS.

    guided-deploy.py SAM_CLI REPO_ROOT

Prints one JSON object: the questions asked (in order, as SAM worded them), the AWS calls that
reached the listener, whether SAM asked a question twice, and the transcript's tail.
"""
import http.server, json, os, pty, re, select, shutil, sys, tempfile, threading, time

sam, root = sys.argv[1], sys.argv[2]
calls = []


class Aws(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
        action = re.search(r"Action=([A-Za-z]+)", body)
        calls.append({"target": self.headers.get("X-Amz-Target") or (action.group(1) if action else ""),
                      "authorization": (self.headers.get("Authorization") or "").split(" ")[0]})
        # What AWS answers dummy credentials: the deploy stops here, after its first call.
        reply = b'<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>'
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST

    def log_message(self, *_):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Aws)
threading.Thread(target=server.serve_forever, daemon=True).start()

work = tempfile.mkdtemp(prefix="guided-")
for f in ["template.yaml", "samconfig.toml"]:
    shutil.copy(os.path.join(root, f), work)
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update({
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "dummy", "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "SAM_CLI_TELEMETRY": "0", "TERM": "dumb", "COLUMNS": "200",
})

pid, fd = pty.fork()
if pid == 0:
    os.chdir(work)
    os.execvpe(sam, [sam, "deploy", "--guided", "--template-file", "template.yaml"], env)

transcript, questions, pending = "", [], ""
prompt_end = re.compile(r"(\[[^\]\n]*\]: ?$|: $|\]: $)")
deadline = time.time() + 240
status = None
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if ready:
        try:
            chunk = os.read(fd, 4096).decode(errors="replace")
        except OSError:
            chunk = ""
        if not chunk:
            break
        transcript += chunk
        pending += chunk
        line = pending.rsplit("\n", 1)[-1]
        if prompt_end.search(line):
            q = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            questions.append(q)
            answer = "y" if "has no authentication. Is this okay?" in q else ""
            os.write(fd, (answer + "\r").encode())
            pending = ""
            if len(questions) > 200:
                break
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
if status is None:
    # The pty closed first: SAM is exiting; give it a moment, then make sure.
    for _ in range(50):
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
server.shutdown()
shutil.rmtree(work, ignore_errors=True)
asked = [re.sub(r"\s*\[.*$", "", q).rstrip(": ") for q in questions]
print(json.dumps({
    "questions": questions,
    "asked_twice": sorted({q for q in asked if asked.count(q) > 1}),
    "aws_calls": calls,
    "exited": status is not None,
    "tail": re.sub(r"\x1b\[[0-9;]*m", "", transcript)[-3000:],
}, indent=1))
