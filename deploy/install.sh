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
  px1|px2) units=(stackd-proxy.socket stackd-proxy stackd-ha) ;;
  be1|be2) units=(stackd-demo-backend) ;;
  redis)
    apt-get install -y redis-server
    install -m 0640 -o redis -g redis "$here/redis/redis.conf" /etc/redis/redis.conf
    echo "Set the password of user stackd in /etc/redis/redis.conf (the same as /etc/stackd/redis.pass on be1 and be2), then: systemctl restart redis-server"
    exit 0 ;;
  *) echo "unknown role '$role': use px1, px2, be1, be2 or redis" >&2; exit 64 ;;
esac

[ -n "$deb" ] && [ -f "$deb" ] || { echo "no stackd package; build it with ./scripts/package, or name the .deb" >&2; exit 66; }
# apt resolves the package's dependencies (adduser); the path must look like a path.
case "$deb" in /*|./*) ;; *) deb=./$deb ;; esac
# The package creates the users: stackd runs the proxy and the demo backend,
# stackd-ha runs `stackd ha` (its own user, so the proxy cannot read the VRRP
# password).
apt-get install -y "$deb"

target=/etc/stackd/stackd.toml
[ -e "$target" ] && target=/etc/stackd/stackd.toml.new
install -m 0640 -o root -g stackd "/etc/stackd/examples/$role.toml" "$target"

# A secret file, created once with a placeholder the operator replaces.
secret() { # path owner-group placeholder
  [ -e "$1" ] && return 0
  install -m 0640 -o root -g "$2" /dev/null "$1"
  echo "$3" > "$1"
  echo "Set the password in $1 (mode 0640, root:$2); it is a placeholder now."
}
if [ "$role" = px1 ] || [ "$role" = px2 ]; then
  secret /etc/stackd/vrrp.pass stackd-ha 1111
else
  secret /etc/stackd/redis.pass stackd change-me
fi
stackd check --config "$target"
[ -d /run/systemd/system ] && systemctl daemon-reload
for u in "${units[@]}"; do systemctl enable "$u"; done
echo "Installed. Review $target (interface name, addresses), then: systemctl start ${units[*]}; stackd status"
