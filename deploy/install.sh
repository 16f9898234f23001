#!/usr/bin/env bash
# Installs stackd on one host of the five-host stack, from the Debian package.
#
#   sudo ./deploy/install.sh px1|px2|be1|be2|redis [path/to/stackd_*.deb]
#
# Installs the package (binary, units, man pages, completions, docs, example
# host files in /etc/stackd/examples/, the stackd user), writes the role's
# /etc/stackd/stackd.toml from its example, validates it with `stackd check`
# and enables the units the role runs. Idempotent; an existing
# /etc/stackd/stackd.toml is kept (the example is written next to it as
# stackd.toml.new). Build the package with ./scripts/package.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
role=${1:?usage: install.sh px1|px2|be1|be2|redis [path/to/stackd_*.deb]}
deb=${2:-$(ls -t "$here"/../target/debian/stackd_*.deb 2>/dev/null | head -n 1 || true)}

case "$role" in
  px1|px2) units=(stackd-proxy stackd-ha) ;;
  be1|be2) units=(stackd-demo-backend) ;;
  redis)
    apt-get install -y redis-server
    install -m 0640 -o redis -g redis "$here/redis/redis.conf" /etc/redis/redis.conf
    echo "Edit the password in /etc/redis/redis.conf (user stackd), then: systemctl restart redis-server"
    exit 0 ;;
  *) echo "unknown role '$role': use px1, px2, be1, be2 or redis" >&2; exit 64 ;;
esac

[ -n "$deb" ] && [ -f "$deb" ] || { echo "no stackd package; build it with ./scripts/package, or name the .deb" >&2; exit 66; }
# apt resolves the package's dependencies (adduser); the path must look like a path.
case "$deb" in /*|./*) ;; *) deb=./$deb ;; esac
apt-get install -y "$deb"

target=/etc/stackd/stackd.toml
[ -e "$target" ] && target=/etc/stackd/stackd.toml.new
install -m 0640 -o root -g stackd "/etc/stackd/examples/$role.toml" "$target"
stackd check --config "$target"
[ -d /run/systemd/system ] && systemctl daemon-reload
for u in "${units[@]}"; do systemctl enable "$u"; done
echo "Installed. Review $target (interface name, addresses), then: systemctl start ${units[*]}; stackd status"
