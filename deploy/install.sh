#!/usr/bin/env bash
# Installs stackd on one host of the five-host stack.
#
#   sudo ./deploy/install.sh px1|px2|be1|be2|redis [path/to/stackd]
#
# Copies the binary, the host's config (deploy/hosts/<role>.toml) and the
# systemd units, validates the config with `stackd check`, and enables the
# services the role runs. Idempotent; an existing /etc/stackd/stackd.toml is
# kept (the new one is written next to it as stackd.toml.new).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
role=${1:?usage: install.sh px1|px2|be1|be2|redis [path/to/stackd]}
bin=${2:-$here/../target/release/stackd}

case "$role" in
  px1|px2) units=(stackd-proxy stackd-ha) ;;
  be1|be2) units=(stackd-demo-backend) ;;
  redis)
    apt-get install -y redis-server
    install -m 0640 -o redis -g redis "$here/redis/redis.conf" /etc/redis/redis.conf
    echo "Set the password of user stackd in /etc/redis/redis.conf (the same as /etc/stackd/redis.pass on be1 and be2), then: systemctl restart redis-server"
    exit 0 ;;
  *) echo "unknown role '$role': use px1, px2, be1, be2 or redis" >&2; exit 64 ;;
esac

[ -x "$bin" ] || { echo "no stackd binary at $bin; build it with: cargo build --release" >&2; exit 1; }
# stackd runs the proxy and the demo backend; stackd-ha runs `stackd ha`
# (its own user, so the VRRP password is not readable by the proxy).
id stackd >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin stackd
install -m 0755 "$bin" /usr/local/bin/stackd
install -d -m 0750 -o root -g stackd /etc/stackd
target=/etc/stackd/stackd.toml
[ -e "$target" ] && target=/etc/stackd/stackd.toml.new
install -m 0640 -o root -g stackd "$here/hosts/$role.toml" "$target"

# A secret file, created once with a placeholder the operator replaces.
secret() { # path owner-group placeholder
  [ -e "$1" ] && return 0
  install -m 0640 -o root -g "$2" /dev/null "$1"
  echo "$3" > "$1"
  echo "Set the password in $1 (mode 0640, root:$2); it is a placeholder now."
}
if [ "$role" = px1 ] || [ "$role" = px2 ]; then
  id stackd-ha >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin stackd-ha
  [ -e /etc/stackd/notify.sh ] || install -m 0755 "$here/notify.sh" /etc/stackd/notify.sh
  secret /etc/stackd/vrrp.pass stackd-ha 1111
else
  secret /etc/stackd/redis.pass stackd change-me
fi
/usr/local/bin/stackd check --config "$target"
for u in "${units[@]}"; do
  install -m 0644 "$here/systemd/$u.service" /etc/systemd/system/
done
systemctl daemon-reload
for u in "${units[@]}"; do systemctl enable "$u"; done
echo "Installed. Review $target (interface name, addresses), then: systemctl start ${units[*]}"
