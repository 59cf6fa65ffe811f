#!/bin/sh
# Scripted input of TA_escape_to_host (sourcetype docker:inspect), disabled by default; enable it in local/inputs.conf
# on a universal forwarder of a docker host where dockerd debug logging is not acceptable.
# Every run asks dockerd for the container create and start events of the last interval (argument 1, seconds,
# default 60) and prints `docker inspect` of each such container as one JSON object per line.
# Needs: the docker CLI, and a forwarder user allowed to talk to dockerd (docker group or root). Plain POSIX sh.
set -u
interval=${1:-60}
case $interval in ''|*[!0-9]*) echo "escape_docker_inspect.sh: interval '$interval' is not a number of seconds" >&2; exit 2;; esac
command -v docker >/dev/null 2>&1 || { echo "escape_docker_inspect.sh: docker CLI not found on PATH" >&2; exit 1; }
until=$(date +%s)
since=$((until - interval))
ids=$(docker events --since "$since" --until "$until" --filter type=container \
        --filter event=create --filter event=start --format '{{.Actor.ID}}' 2>/dev/null | sort -u)
for id in $ids; do
  # A container removed meanwhile (--rm) is gone: say so on stderr (splunkd.log), emit nothing for it.
  docker inspect --type container --format '{{json .}}' "$id" 2>/dev/null \
    || echo "escape_docker_inspect.sh: container $id no longer exists" >&2
done
exit 0
