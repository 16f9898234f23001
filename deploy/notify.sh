#!/bin/sh
# Called by stackd ha on every state change, exactly like keepalived's notify:
#   notify.sh INSTANCE NAME STATE PRIORITY     (STATE: MASTER, BACKUP, FAULT or STOP)
# Keep it fast; stackd waits for it at most a few seconds.
logger -t stackd-notify "instance $2 is now $3 (priority $4)"
