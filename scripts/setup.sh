#!/usr/bin/env bash
# Installs the Debian packages syncstorm needs to build, test and run its lab, when they are
# missing. Idempotent and quiet when everything is present. Needs root (or sudo) to install.
#   scripts/setup.sh            build + test + lab packages
#   scripts/setup.sh --runtime  only what the runtime image needs
# Besides the Debian packages, the test set-up installs pouchdb-server (a pinned npm version, the
# CouchDB-API server tests/integration/pouchdb_test.cpp runs) under /var/tmp, never in the repo.
set -euo pipefail

# clang-14, its sanitizer and libFuzzer runtimes and lld: the sanitizer build (scripts/sanitize.sh);
# clang-format-14: the format check (scripts/format.sh).
build_pkgs=(cmake g++ ninja-build pkg-config libboost1.81-dev libboost-system1.81-dev libssl-dev libpcap-dev libcli11-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libpq-dev libsnappy-dev clang-14 libclang-rt-14-dev lld-14 clang-format-14)
lab_pkgs=(postgresql-15 postgresql-client-15 haproxy iproute2 iptables procps psmisc
  util-linux libpq5 libpcap0.8 libsnappy1v5 ca-certificates openssl)
# tshark (with wireshark-common's capinfos and mergecap) reads the capture's pcap files back in
# the capture tests; prometheus scrapes a run's live metrics in metrics_endpoint_test; python3-yaml reads the CI recipes in tests/integration/ci_recipes_test.cpp.
test_pkgs=(python3 python3-jsonschema python3-yaml curl chromium libxml2-utils fonts-dejavu-core tshark prometheus)

want=()
if [[ "${1:-}" == "--runtime" ]]; then
  want=("${lab_pkgs[@]}")
else
  want=("${build_pkgs[@]}" "${lab_pkgs[@]}" "${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js for pouchdb-server: Debian's nodejs and npm, unless a node and npm are there already
# (another Node packaging, e.g. one whose nodejs package carries npm, would conflict with Debian's).
if [[ "${1:-}" != "--runtime" ]] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  missing+=(nodejs npm)
fi

# pouchdb-server, pinned: the version tests/integration/pouchdb_test.cpp expects. Scripts are not
# run (--ignore-scripts): leveldown loads the prebuilt N-API binary its npm package ships, and
# sqlite3's install would try to download one from outside the registry (pouchdb-server uses
# LevelDB unless started with --sqlite).
pouchdb_version=4.2.0
pouchdb_dir=${SYNCSTORM_POUCHDB_DIR:-/var/tmp/syncstorm/npm/pouchdb-server-$pouchdb_version}
install_pouchdb() {
  [[ "${1:-}" == "--runtime" ]] && return 0
  [[ -x "$pouchdb_dir/node_modules/.bin/pouchdb-server" ]] && return 0
  echo "setup: installing pouchdb-server@$pouchdb_version into $pouchdb_dir" >&2
  mkdir -p "$pouchdb_dir"
  [[ -f "$pouchdb_dir/package.json" ]] || echo '{"name": "syncstorm-pouchdb-server", "private": true}' >"$pouchdb_dir/package.json"
  npm install --prefix "$pouchdb_dir" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "pouchdb-server@$pouchdb_version" >"$pouchdb_dir/npm-install.log" 2>&1 ||
    { echo "setup: npm install pouchdb-server@$pouchdb_version failed:" >&2; tail -5 "$pouchdb_dir/npm-install.log" >&2; exit 1; }
}

if [[ ${#missing[@]} -eq 0 ]]; then
  install_pouchdb "${1:-}"
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# PostgreSQL's package must not create and start a cluster on 5432: syncstorm runs its own.
if [[ ! -e /etc/postgresql-common/createcluster.conf ]] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf 2>/dev/null; then
  $SUDO mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
# wireshark-common asks whether non-root users may capture: answer no (syncstorm captures as
# root or with CAP_NET_RAW itself), so the install never stops at a prompt.
if printf '%s\n' "${missing[@]}" | grep -qx tshark; then
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | $SUDO debconf-set-selections
fi
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages may start haproxy's and prometheus' own services; the lab runs its own haproxy
# processes, and the tests their own prometheus (tests/integration/metrics_endpoint_test.cpp).
for unit in haproxy prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
install_pouchdb "${1:-}"
echo "setup: done" >&2
