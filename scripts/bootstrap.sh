# Shared set-up for scripts/demo and scripts/test (sourced, not run).
# Installs what the project needs on a fresh Debian/Ubuntu machine: the Python
# virtualenv with the pinned requirements and the project (editable), the sao
# web client from npm, and, for the tests, Debian's Chromium.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
SAO_VERSION="8.0.11"
SAO_DIR="$ROOT/sao/tryton-sao"
export PATH="$VENV/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    # apt-get update once per run, then install the named Debian packages.
    if [ -z "${_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_system_libraries() {
    # weasyprint (PDF receipts) loads pango, harfbuzz and fontconfig at run time.
    # ldconfig lives in /sbin, outside a plain user's PATH.
    local libraries
    libraries="$(PATH="$PATH:/usr/sbin:/sbin" ldconfig -p 2>/dev/null || true)"
    if ! grep -q 'libpangoft2-1.0.so.0' <<<"$libraries" \
        || ! grep -q 'libharfbuzz-subset.so.0' <<<"$libraries" \
        || [ ! -d /usr/share/fonts/truetype/dejavu ]; then
        log "Installing Debian's pango, harfbuzz and fonts for PDF receipts"
        apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
            libharfbuzz-subset0 libfontconfig1 libglib2.0-0 fonts-dejavu-core
    fi
}

ensure_python() {
    ensure_system_libraries
    local stamp="$VENV/.requirements.sha1"
    local want
    want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha1sum | cut -d' ' -f1)"
    if [ ! -x "$PY" ]; then
        log "Creating the virtualenv in .venv"
        python3 -m venv "$VENV" 2>/dev/null || {
            apt_install python3-venv
            python3 -m venv "$VENV"
        }
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "Installing Python requirements (pinned) and the project (editable)"
        mkdir -p "$ROOT/var/log"
        local pip_log="$ROOT/var/log/pip.log"
        {
            "$PY" -m pip install --upgrade pip &&
            "$PY" -m pip install -r "$ROOT/requirements.txt" &&
            "$PY" -m pip install --no-deps -e "$ROOT"
        } >"$pip_log" 2>&1 || { tail -40 "$pip_log"; return 1; }
        echo "$want" > "$stamp"
    fi
}

ensure_sao() {
    if [ -f "$SAO_DIR/index.html" ] && [ -d "$SAO_DIR/node_modules/jquery" ]; then
        return
    fi
    command -v npm >/dev/null || apt_install nodejs npm
    log "Installing the sao web client $SAO_VERSION from npm"
    rm -rf "$ROOT/sao" && mkdir -p "$ROOT/sao"
    # sao's index.html loads node_modules/ from inside its own folder: install its
    # dependencies there rather than hoisting them into a parent node_modules.
    (cd "$ROOT/sao" && npm pack -q "tryton-sao@$SAO_VERSION" >/dev/null \
        && tar xzf "tryton-sao-$SAO_VERSION.tgz" && mv package tryton-sao \
        && rm "tryton-sao-$SAO_VERSION.tgz")
    (cd "$SAO_DIR" && npm install -q --omit=dev --legacy-peer-deps --no-audit \
        --no-fund --ignore-scripts >/dev/null)
}

ensure_chromium() {
    if ! command -v chromium >/dev/null; then
        log "Installing Debian's chromium for the browser tests"
        apt_install chromium
    fi
}
