#!/usr/bin/env bash
# Removes what earlier test runs left on the suites' Docker daemon ($DOCKER_HOST): containers,
# networks and volumes of test deployments (`codebay.deployment=codebay-t<8 hex>`, the names
# test/support/stack.ts gives) created over an hour ago. A stack removes its own when it stops;
# a run that was killed cannot. Other deployments (`npm start`'s `codebay`) are never touched.
# Prints how many objects went. CODEBAY_LEFTOVER_AGE_SECONDS: the age (3600).
set -uo pipefail
cutoff=$(($(date +%s) - ${CODEBAY_LEFTOVER_AGE_SECONDS:-3600}))

# stale KIND: IDs of KIND (container, network, volume) objects of test deployments older than the cutoff.
stale() {
  local ids format
  case $1 in
    container)
      ids=$(docker ps -aq --filter label=codebay.deployment)
      format='{{index .Config.Labels "codebay.deployment"}} {{.Created}} {{.Id}}'
      ;;
    network)
      ids=$(docker network ls -q --filter label=codebay.deployment)
      format='{{index .Labels "codebay.deployment"}} {{.Created}} {{.Id}}'
      ;;
    volume)
      ids=$(docker volume ls -q --filter label=codebay.deployment)
      format='{{index .Labels "codebay.deployment"}} {{.CreatedAt}} {{.Name}}'
      ;;
  esac
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one ID per word
  docker "$1" inspect --format "$format" $ids 2>/dev/null |
    while read -r deployment created id; do
      [[ $deployment =~ ^codebay-t[0-9a-f]{8}$ ]] || continue
      (($(date -d "$created" +%s 2>/dev/null || echo "$cutoff") < cutoff)) && echo "$id"
    done
}

removed=0
for kind in container network volume; do
  args=()
  [[ $kind == container ]] && args=(-f)
  while read -r id; do
    [[ -n $id ]] || continue
    docker "$kind" rm "${args[@]}" "$id" >/dev/null 2>&1 && removed=$((removed + 1))
  done < <(stale "$kind")
done
echo "removed $removed objects that earlier test runs left on $DOCKER_HOST"
