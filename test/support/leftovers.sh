#!/usr/bin/env bash
# Removes what earlier test runs left on the suites' Docker daemon ($DOCKER_HOST): containers,
# networks and volumes of test deployments (`codebay.deployment=codebay-t<8 hex>`, the names
# test/support/stack.ts gives; `codebay-c<8 hex>`, test/support/compose.ts's) and of test
# compose projects (`com.docker.compose.project=codebay-c<8 hex>`: its services, network and
# volumes) created over an hour ago. A stack removes its own when it stops; a run that was
# killed cannot. Other deployments (`npm start`'s `codebay`, a compose project of another name)
# are never touched. A failed instance's container kept for inspection (FAILED_INSTANCE_KEEP_SECONDS)
# is its stack's like any other: its provisioner or the stack removes it, or this once it is stale.
# Prints how many objects went. CODEBAY_LEFTOVER_AGE_SECONDS: the age (3600).
set -uo pipefail
cutoff=$(($(date +%s) - ${CODEBAY_LEFTOVER_AGE_SECONDS:-3600}))

# stale KIND LABEL: IDs of KIND (container, network, volume) objects whose LABEL names a test
# deployment, older than the cutoff.
stale() {
  local ids format label=$2
  case $1 in
    container)
      ids=$(docker ps -aq --filter "label=$label")
      format="{{index .Config.Labels \"$label\"}} {{.Id}} {{.Created}}"
      ;;
    network)
      # (A network's Created reads "2026-12-01 14:08:18.2 +0000 UTC": last, spaces and all.)
      ids=$(docker network ls -q --filter "label=$label")
      format="{{index .Labels \"$label\"}} {{.Id}} {{.Created}}"
      ;;
    volume)
      ids=$(docker volume ls -q --filter "label=$label")
      format="{{index .Labels \"$label\"}} {{.Name}} {{.CreatedAt}}"
      ;;
  esac
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one ID per word
  docker "$1" inspect --format "$format" $ids 2>/dev/null |
    while read -r deployment id created; do
      [[ $deployment =~ ^codebay-[tc][0-9a-f]{8}$ ]] || continue
      created=$(date -d "${created% UTC}" +%s 2>/dev/null || echo "$cutoff")
      ((created < cutoff)) && echo "$id"
    done
}

removed=0
for kind in container network volume; do
  force=()
  # Containers with their anonymous volumes (a compose builder's dockerd storage).
  [[ $kind == container ]] && force=(-f -v)
  for label in codebay.deployment com.docker.compose.project; do
    while read -r id; do
      [[ -n $id ]] || continue
      docker "$kind" rm ${force[@]+"${force[@]}"} "$id" >/dev/null 2>&1 && removed=$((removed + 1))
    done < <(stale "$kind" "$label")
  done
done
echo "removed $removed objects that earlier test runs left on $DOCKER_HOST"
