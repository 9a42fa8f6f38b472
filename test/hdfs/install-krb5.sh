#!/usr/bin/env bash
# Installs what the secured-HDFS tests need, once, from the package registries: MIT Kerberos's headers
# (libkrb5-dev, to build the optional `kerberos` npm module) and its client tools (krb5-user: kinit) from
# Debian, then the module itself when it does not load (npm drops an optional module whose build failed,
# as it does in `npm ci` on a machine without the headers). Idempotent and quick when all is there.
# Run from anywhere with the project's node first on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
[ -e /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
command -v kinit >/dev/null || missing+=(krb5-user)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-krb5: apt-get install ${missing[*]}" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

if ! node -e "require('kerberos')" 2>/dev/null; then
  if [ -d node_modules/kerberos ]; then
    echo "install-krb5: npm rebuild kerberos" >&2
    npm rebuild kerberos >&2
  else
    # Installs what package-lock.json lists and node_modules lacks; package files stay as they are.
    echo "install-krb5: npm install --no-save (the optional kerberos module)" >&2
    npm install --no-save --no-audit --no-fund >&2
  fi
fi
node -e "require('kerberos')"
