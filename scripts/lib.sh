# Shared by scripts/*: tool installation and service start-up. Source it; do not run it.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
venv="$tools/venv"
[ -d "$HOME/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null; then
    log "installing redis-server with apt-get (first run only; needs root or sudo; about a minute)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  fi
  REDIS_SERVER="$(command -v redis-server)"
  export REDIS_SERVER
}

# A venv in the ignored .tools/ folder with the pinned Python tools; rebuilt when the pins change.
ensure_venv() {
  local req="$root/scripts/requirements-test.txt" stamp="$venv/.requirements"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    log "installing the Python test tools into $venv (first run, or when scripts/requirements-test.txt changes):"
    log "  moto[server] (the SQS emulator) and aws-sam-cli (sam validate --lint), about 400 MB; a minute or two"
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

# checkov, the template's security scanner, in a venv of its own (its pins clash with
# aws-sam-cli's); sets CHECKOV.
CHECKOV_VERSION=3.3.30
ensure_checkov() {
  local dir="$tools/checkov-venv"
  if ! "$dir/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
    log "installing checkov $CHECKOV_VERSION from PyPI into $dir (about 300 MB; a minute or two)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
  export CHECKOV="$dir/bin/checkov"
}

# The AWS CLI that scripts/set-secrets drives, in a venv of its own (it pins botocore exactly);
# sets AWS_CLI_BIN, the folder with its `aws`.
AWS_CLI_VERSION=1.46.3
ensure_awscli() {
  local dir="$tools/awscli-venv"
  if ! "$dir/bin/aws" --version 2>/dev/null | grep -q "aws-cli/$AWS_CLI_VERSION "; then
    log "installing the AWS CLI $AWS_CLI_VERSION from PyPI into $dir (about 30 MB)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "awscli==$AWS_CLI_VERSION"
  fi
  export AWS_CLI_BIN="$dir/bin"
}

# cargo-lambda (and the Zig it cross-compiles with) in a venv of its own, so that changing
# its pin does not rebuild the test tools; sets CARGO_LAMBDA.
CARGO_LAMBDA_VERSION=1.9.2
ensure_cargo_lambda() {
  local dir="$tools/lambda-venv"
  if ! "$dir/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "cargo-lambda $CARGO_LAMBDA_VERSION "; then
    log "installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI into $dir (with Zig, about 60 MB)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
  fi
  export CARGO_LAMBDA="$dir/bin/cargo-lambda"
}

# GitHub's published webhook examples (every example of every event), from the npm package
# @octokit/webhooks-examples; sets AETHERIUM_GITHUB_EXAMPLES to its api.github.com index.
GITHUB_EXAMPLES_VERSION=7.6.1
ensure_github_examples() {
  local dir="$tools/github-examples" index
  index="$dir/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
  if [ ! -f "$index" ] || ! grep -q "\"version\": \"$GITHUB_EXAMPLES_VERSION\"" "$dir/node_modules/@octokit/webhooks-examples/package.json"; then
    log "installing GitHub's webhook examples (npm @octokit/webhooks-examples@$GITHUB_EXAMPLES_VERSION, about 2 MB)"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "@octokit/webhooks-examples@$GITHUB_EXAMPLES_VERSION" >/dev/null
  fi
  export AETHERIUM_GITHUB_EXAMPLES="$index"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port seconds
  local port=$1 limit=$2 i=0
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.5)" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((limit * 10)) ]; then return 1; fi
    sleep 0.1
  done
}

# Starts moto's SQS server on a free port; sets MOTO_PID and AETHERIUM_TEST_SQS_ENDPOINT.
start_moto() {
  local port
  port="$(free_port)"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$tools/moto.log" 2>&1 &
  MOTO_PID=$!
  if ! wait_for_port "$port" 30; then
    log "moto_server did not start; its log:"; cat "$tools/moto.log" >&2; return 1
  fi
  export AETHERIUM_TEST_SQS_ENDPOINT="http://127.0.0.1:$port"
  log "SQS emulator (moto) on $AETHERIUM_TEST_SQS_ENDPOINT"
}
