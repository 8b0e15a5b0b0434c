# BuildKit's Dockerfile frontend as upstream releases it (docker/dockerfile; see
# github.com/moby/buildkit frontend/dockerfile/cmd/dockerfile-frontend/Dockerfile, stage
# `release`), from the binary deploy/buildkit/install.sh builds. deploy/buildkit/frontend-image.sh
# builds it (classic builder, the binary beside this file) and pushes it into a base-image mirror.
# The caps are the ones Docker 20.10's BuildKit and buildx were seen to work with.
FROM scratch
COPY dockerfile-frontend /bin/dockerfile-frontend
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/bin/dockerfile-frontend"]
