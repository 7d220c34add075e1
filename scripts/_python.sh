# Sourced by scripts/test and scripts/demo: choose the Python to install into, and install loudly.
#
# - Inside a virtual environment, or with an interpreter that lets pip install (pyenv, conda, the
#   official images), use it as it is.
# - On a stock Debian/Ubuntu Python, which refuses `pip install` outside a virtual environment
#   (PEP 668, "externally-managed-environment"), create .venv here and use it.
# Every pip step prints what it does and stops the script when it fails (never silently).

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found; install Python 3.11 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv)" >&2
  exit 2
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: Podium needs Python 3.11 or newer; $PY is $("$PY" -V 2>&1). Set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
_managed=$("$PY" - <<'PYEOF'
import os, sys, sysconfig
in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
print("yes" if (not in_venv and os.path.exists(marker)) else "no")
PYEOF
)
if [ "$_managed" = yes ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "== this Python is managed by the system (PEP 668): creating a virtual environment in .venv"
    if ! "$PY" -m venv .venv; then
      echo "error: could not create .venv; install the venv module (Debian/Ubuntu: sudo apt install python3-venv) and run this again" >&2
      exit 2
    fi
  fi
  PY=.venv/bin/python
  echo "== using .venv (activate it with: . .venv/bin/activate)"
fi
"$PY" -m pip --version >/dev/null 2>&1 || {
  echo "error: $PY has no pip; Debian/Ubuntu: sudo apt install python3-pip python3-venv" >&2
  exit 2
}

# pip_install ARGS...: pip with its progress shown, minus two warnings that are noise here; stops
# the script with pip's own exit code when it fails.
pip_install() {
  local started=$SECONDS rc
  set +e
  "$PY" -m pip install --disable-pip-version-check "$@" 2>&1 \
    | grep --line-buffered -v -e '^WARNING: Location' -e 'Running pip as the' -e '^Requirement already satisfied'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "error: pip install $* failed (exit $rc): the reason is above" >&2
    exit "$rc"
  fi
  echo "   (done in $((SECONDS - started)) s)"
}
