#!/bin/sh
# Called by stackd ha on every state change, exactly like keepalived's notify:
#   notify.sh INSTANCE NAME STATE PRIORITY     (STATE: MASTER, BACKUP, FAULT or STOP)
# Called once a state has lasted one advert interval, at most once a second
# (a flapping instance does not run it per flip); STOP runs before ha exits.
# Keep it fast: it is killed after 30 s (5 s for STOP). It runs as the ha
# user (stackd-ha) without ha's network capabilities.
logger -t stackd-notify "instance $2 is now $3 (priority $4)"
