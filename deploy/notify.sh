#!/bin/sh
# Called by stackd ha on every state change, like keepalived's notify script:
#   notify.sh INSTANCE STATE PRIORITY      (STATE: MASTER, BACKUP or FAULT)
# Keep it fast; stackd waits for it at most a few seconds.
logger -t stackd-notify "instance $1 is now $2 (priority $3)"
