#!/usr/bin/env python3
"""Runs scripts/set-secrets as a user would, in a pseudo-terminal (its prompts read the
terminal, never echo), against moto's Secrets Manager and CloudFormation on loopback, with
the real AWS CLI. It first creates the stack's four secrets as the template creates them and
a stack whose outputs name them.

    set-secrets-session.py AWS_CLI_BIN_DIR MOTO_ENDPOINT REPO_ROOT

Prints one JSON object: the transcript of each run and the secrets' values after it.
"""
import json, os, pty, re, select, subprocess, sys, time, uuid

bin_dir, endpoint, root = sys.argv[1:4]
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update({"PATH": f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
run_id = uuid.uuid4().hex[:8]
stack = f"set-secrets-{run_id}"


def aws(*args):
    out = subprocess.run(["aws", *args, "--output", "json", "--region", "us-east-1"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else None


initial = {
    "GithubWebhookSecretArn": {"current": "generated-by-the-stack-0123456789abcdefghij", "previous": ""},
    "GithubCredentialsSecretArn": {"token": "", "app_private_key": ""},
    "SlackSigningSecretArn": {"signing_secret": ""},
    "SlackBotTokenSecretArn": {"bot_token": ""},
}
arns = {}
for output, value in initial.items():
    arns[output] = aws("secretsmanager", "create-secret", "--name", f"{stack}/{output}",
                       "--secret-string", json.dumps(value))["ARN"]
template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {k: {"Value": v} for k, v in arns.items()}}
aws("cloudformation", "create-stack", "--stack-name", stack, "--template-body", json.dumps(template))


def values():
    return {k: json.loads(aws("secretsmanager", "get-secret-value", "--secret-id", a)["SecretString"])
            for k, a in arns.items()}


def session(args, answers):
    """Runs set-secrets with `args`, typing each answer at the next prompt ending in ': '."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(sys.executable, [sys.executable, os.path.join(root, "scripts/set-secrets"),
                                    "--stack-name", stack, "--region", "us-east-1", *args], env)
    transcript, pending, answers = "", "", list(answers)
    deadline = time.time() + 60
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:
                chunk = ""
            if not chunk:
                break
            transcript += chunk
            pending += chunk
            if pending.endswith(": ") and answers:
                os.write(fd, (answers.pop(0) + "\r").encode())
                pending = ""
    _, status = os.waitpid(pid, 0)
    return {"transcript": transcript, "status": os.waitstatus_to_exitcode(status), "unanswered": len(answers)}


pem = os.path.join("/tmp", f"app-{run_id}.pem")
with open(pem, "w") as f:
    f.write("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n")
token = "ghp_" + "A1b2C3d4E5" * 4
signing = "8f742231b10e8888abcd99ab1c2d85a5"
result = {"stack": stack}
# A too-short token is refused and asked again; the PEM path is read; the bot token kept.
result["first"] = session([], ["short", token, pem, signing, ""])
result["after_first"] = values()
result["rotate"] = session(["--rotate-github-webhook"], [])
result["after_rotate"] = values()
result["finish"] = session(["--finish-rotation"], [])
result["after_finish"] = values()
result["token"], result["signing"], result["pem"] = token, signing, open(pem).read()
os.unlink(pem)
print(json.dumps(result, indent=1))
