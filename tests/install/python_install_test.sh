#!/usr/bin/env bash
# The Python package as users install it: `cmake --install` into a temporary
# prefix, then /usr/bin/python3 imports secure_credentials from the prefix's
# site directory alone (its RPATH finds the prefix's libcredentials, not the
# build tree's) and stores and reads a credential.
# Usage: python_install_test.sh BUILD_DIR PYTHON SITE_DIR_RELATIVE_TO_PREFIX
set -euo pipefail
build=$1 python=$2 site=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/$site/secure_credentials/__init__.py"
cd "$work"
env -i PATH="$PATH" PYTHONPATH="$work/prefix/$site" PYTHONDONTWRITEBYTECODE=1 \
  "$python" - "$work/prefix" <<'PY'
import sys
import secure_credentials as sc

prefix = sys.argv[1]
assert sc.__file__.startswith(prefix), sc.__file__
maps = open("/proc/self/maps").read()
libraries = {line.split()[-1] for line in maps.splitlines() if "libcredentials.so" in line}
assert libraries and all(path.startswith(prefix) for path in libraries), libraries

vault = sc.CredentialVault("vault", master_key=sc.generate_master_key())
user = sc.UserContext(user_id="alice", username="alice", roles=["user"])
vault.store_credential(user_context=user, name="db", db_type="postgres", host="h",
                       database="d", username="u", password="pw")
assert vault.get_decrypted_password(vault.get_credential(user, "db")) == "pw"
print("ok")
PY
echo "secure_credentials imports and works from the installed prefix"
