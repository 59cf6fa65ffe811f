#!/bin/sh
# Scripted input of TA_escape_to_host (sourcetype docker:inspect), disabled by default; enable it in local/inputs.conf
# on a universal forwarder of a docker host where dockerd debug logging is not acceptable (README, docs/sourcetypes.md).
#
# It runs continuously (inputs.conf interval = 0: splunkd restarts it when it exits). It follows `docker events` and,
# the moment a container is created or started, prints `docker inspect` of that container as one JSON line, with the
# event in front:
#   {"EscapeEvent":{"time":"2026-11-29T03:43:44.708695177Z","action":"start"},"Id":"...","Created":"...",...}
# EscapeEvent.time is the time dockerd gives the create or start (props.conf takes _time from it), so a restart of
# an old container is an event of the restart, not of the container's creation. Reacting at once catches containers
# that live only a moment (docker run --rm): they still exist when their create event arrives. One that is already
# removed when it is inspected is reported on stderr (splunkd.log), never silently.
#
# Argument 1 (default 60): on a first start (no checkpoint yet) look back that many seconds. Afterwards it resumes
# after the last event it handled (checkpoint: $ESCAPE_DOCKER_INSPECT_STATE, default
# $SPLUNK_HOME/var/lib/splunk/modinputs/escape_docker_inspect/since), so a forwarder or dockerd restart loses nothing
# that dockerd still has in its event buffer (dockerd keeps the last 1,000 events in memory).
#
# Privileges: the forwarder user must reach the docker API socket (/var/run/docker.sock): membership of the docker
# group or root. Either is root-equivalent on the host (anyone who can talk to dockerd can start a privileged
# container). The script only calls `docker events` and `docker inspect`. Plain POSIX sh.
set -u
lookback=${1:-60}
case $lookback in ''|*[!0-9]*) echo "escape_docker_inspect.sh: look-back '$lookback' is not a number of seconds" >&2; exit 2;; esac
command -v docker >/dev/null 2>&1 || { echo "escape_docker_inspect.sh: docker CLI not found on PATH" >&2; exit 1; }

state=${ESCAPE_DOCKER_INSPECT_STATE:-}
if [ -z "$state" ] && [ -n "${SPLUNK_HOME:-}" ]; then
  state=$SPLUNK_HOME/var/lib/splunk/modinputs/escape_docker_inspect
fi
since=$(($(date +%s) - lookback))
if [ -n "$state" ]; then
  mkdir -p "$state" 2>/dev/null || { echo "escape_docker_inspect.sh: cannot create checkpoint folder $state" >&2; state=; }
fi
if [ -n "$state" ] && [ -r "$state/since" ]; then
  saved=$(cat "$state/since")
  case $saved in
    [0-9]*.[0-9]*) case $saved in *[!0-9.]*) ;; *) since=$saved;; esac;;
    *) echo "escape_docker_inspect.sh: ignoring unreadable checkpoint '$saved'" >&2;;
  esac
fi

# One line per event: the time in nanoseconds since the epoch, the action, the container id.
docker events --since "$since" --filter type=container --filter event=create --filter event=start \
    --format '{{.TimeNano}} {{.Action}} {{.Actor.ID}}' | {
  while read -r nano action id; do
    case $nano in *[!0-9]*|'') nano=x;; esac
    if [ "$nano" = x ] || [ ${#nano} -lt 10 ] || [ ${#nano} -gt 19 ]; then
      echo "escape_docker_inspect.sh: unexpected event line '$nano $action $id'" >&2; continue
    fi
    case $id in *[!0-9a-f]*|'') echo "escape_docker_inspect.sh: unexpected container id '$id'" >&2; continue;; esac
    seconds=${nano%?????????}
    fraction=${nano#"$seconds"}
    stamp=$(date -u -d "@$seconds" +%Y-%m-%dT%H:%M:%S 2>/dev/null) \
      || stamp=$(date -u -r "$seconds" +%Y-%m-%dT%H:%M:%S 2>/dev/null) \
      || { echo "escape_docker_inspect.sh: date cannot format $seconds" >&2; continue; }
    record=$(docker inspect --type container --format '{{json .}}' "$id" 2>/dev/null)
    case $record in
      '{'*) printf '{"EscapeEvent":{"time":"%s.%sZ","action":"%s"},%s\n' "$stamp" "$fraction" "$action" "${record#?}";;
      *) echo "escape_docker_inspect.sh: container $id ($action at $stamp.${fraction}Z) was removed before it could be inspected" >&2;;
    esac
    if [ -n "$state" ]; then
      next=$((nano + 1))
      printf '%s.%s\n' "${next%?????????}" "${next#"${next%?????????}"}" > "$state/since.tmp" && mv "$state/since.tmp" "$state/since"
    fi
  done
}
status=$?
# docker events ends when dockerd stops or restarts: wait a little so that splunkd's restart does not spin.
[ "${ESCAPE_DOCKER_INSPECT_NO_PAUSE:-}" = 1 ] || sleep 10
exit $status
