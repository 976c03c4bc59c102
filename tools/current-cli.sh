# Sourced by tools/bootstrap.sh and tools/test.sh. The tests have two AWS clients as
# oracles: Debian's (/usr/bin/aws, /usr/bin/python3 with python3-botocore) and the current
# one (pip's awscli and botocore): `aws` and `python3` first on PATH. A machine that has
# no current one first on PATH gets it in a virtual environment, FO_CURRENT_CLI_VENV, whose
# bin directory tools/test.sh puts first on PATH (Debian's packages stay as they are).
FO_CURRENT_CLI_VENV=${FO_CURRENT_CLI_VENV:-/opt/fo-test/awscli-current}

# True when `aws` and `python3` first on PATH are not Debian's and python3 has botocore.
current_cli_on_path() {
  local aws
  aws=$(command -v aws 2>/dev/null) || return 1
  [ "$(readlink -f "$aws")" != "$(readlink -f /usr/bin/aws 2>/dev/null || echo /usr/bin/aws)" ] || return 1
  python3 -c 'import sys, botocore; sys.exit(botocore.__file__.startswith("/usr/lib/python3/"))' \
    2>/dev/null
}

# Puts the virtual environment's bin first on PATH when the machine has no current CLI of
# its own and the environment exists.
use_current_cli() {
  if ! current_cli_on_path && [ -x "$FO_CURRENT_CLI_VENV/bin/aws" ]; then
    export PATH="$FO_CURRENT_CLI_VENV/bin:$PATH"
  fi
}
